// What the waker does with a request before it may wake an instance: the one set of rules
// for plain requests and websocket upgrades alike, so no kind of request slips past them.
import { describeRefusal, type RestartDecision } from "../core/crash-loop.js";
import type { InstanceRecord } from "../store/store.js";
import type { PageKind } from "./pages.js";

export interface WakeRequest {
  method: string;
  /** The User-Agent header, "" when there is none. */
  userAgent: string;
  /** nginx never connected to the instance, so nothing of the request was sent to it. */
  neverReachedInstance: boolean;
}

/** An answer given instead of a wake. */
export interface Refusal {
  status: number;
  kind: PageKind;
  /** The instance the answer names; none when there is no such instance. */
  instance: InstanceRecord | undefined;
  reason?: string;
  code?: string;
  headers: Record<string, string>;
}

export type BeforeWake =
  { action: "wake"; instance: InstanceRecord } | ({ action: "refuse" } & Refusal);

export function decideBeforeWake(
  instance: InstanceRecord | undefined,
  request: WakeRequest,
  options: {
    wakeFilter: readonly string[];
    now: number;
    /** The crash-loop rule's answer for this instance (see services/crashes.ts). */
    restart: RestartDecision;
  },
): BeforeWake {
  if (!instance || instance.state === "destroying") {
    return { action: "refuse", status: 404, kind: "not-found", instance: undefined, headers: {} };
  }
  if (instance.state === "suspended") {
    return {
      action: "refuse",
      status: 503,
      kind: "suspended",
      instance,
      reason: "suspended",
      headers: { "retry-after": "3600" },
    };
  }
  if (!request.neverReachedInstance) {
    // nginx connected, so the app (nothing else listens on an instance's port: acc-ports' socket
    // refuses) accepted the request and may have run it before it failed, was stopped or cut
    // the connection: sending it again could run it twice, whatever the method.
    return {
      action: "refuse",
      status: 502,
      kind: "failed",
      instance,
      reason: "the application did not answer",
      headers: {},
    };
  }
  if (!options.restart.allowed) {
    // It keeps failing: answer at once rather than start a doomed app for every request.
    const { retryAt } = options.restart;
    return {
      action: "refuse",
      status: 503,
      kind: "failed",
      instance,
      reason: `${instance.lastError ?? "failed"}; ${describeRefusal(options.restart, options.now)}`,
      code: "ACC_START_FAILED",
      headers:
        retryAt === null
          ? {}
          : { "retry-after": String(Math.max(1, Math.ceil((retryAt - options.now) / 1000))) },
    };
  }
  const ua = request.userAgent.toLowerCase();
  if (instance.state !== "running" && options.wakeFilter.some((word) => ua.includes(word))) {
    return {
      action: "refuse",
      status: 503,
      kind: "filtered",
      instance,
      reason: "asleep",
      headers: { "retry-after": "300" },
    };
  }
  return { action: "wake", instance };
}
