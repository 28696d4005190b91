// What the waker does with a request before it may wake an instance: the one set of rules
// for plain requests and websocket upgrades alike, so no kind of request slips past them.
import type { InstanceRecord } from "../store/store.js";
import type { PageKind } from "./pages.js";

/** A failed instance is tried again by a request only this long after its failure. */
export const FAILED_RETRY_MS = 10_000;

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
  options: { wakeFilter: readonly string[]; now: number },
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
  if (
    instance.state === "failed" &&
    options.now - Date.parse(instance.stateChangedAt) < FAILED_RETRY_MS
  ) {
    // It just failed: answer at once rather than start a doomed app for every request.
    return {
      action: "refuse",
      status: 503,
      kind: "failed",
      instance,
      reason: instance.lastError ?? "failed",
      code: "ACC_START_FAILED",
      headers: { "retry-after": String(FAILED_RETRY_MS / 1000) },
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
