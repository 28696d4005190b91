// Reads acc's opt-in trace (ACC_TRACE, src/lib/trace.ts) of one wake and splits the wake into
// its phases, in the order they happen. All marks share one clock (CLOCK_REALTIME, ms with a
// microsecond fraction): acc server's, acc-launch's and the bench client's.
import { readFile, writeFile } from "node:fs/promises";

export interface Mark {
  at: number;
  instance: string;
  point: string;
  detail: string;
}

export async function readTrace(file: string): Promise<Mark[]> {
  const text = await readFile(file, "utf8");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const [at = "", instance = "", point = "", ...rest] = line.split(" ");
      return { at: Number(at), instance, point, detail: rest.join(" ") };
    })
    .sort((a, b) => a.at - b.at);
}

export async function clearTrace(file: string): Promise<void> {
  await writeFile(file, "");
}

/**
 * A phase: its label, and the marks it runs between ("sent" and "received" are the client's).
 * `critical`: on the path of the held request's answer (the others run alongside it).
 */
export interface Phase {
  label: string;
  from: string;
  to: string;
  critical: boolean;
}

export const WAKE_PHASES: readonly Phase[] = [
  {
    label: "nginx: refused connect, hand-over to the waker",
    from: "sent",
    to: "request",
    critical: true,
  },
  {
    label: "waker: lookup, wake filter, restart rule (store reads)",
    from: "request",
    to: "decided",
    critical: true,
  },
  {
    label: "waker: manifest, start rule, room (max_running)",
    from: "decided",
    to: "room",
    critical: true,
  },
  { label: "lease taken (store write)", from: "room", to: "lease", critical: true },
  {
    label: "start: reread, restore check, manifest, start rule",
    from: "lease",
    to: "checked",
    critical: true,
  },
  { label: "state starting (store write)", from: "checked", to: "state-starting", critical: true },
  { label: "cgroup prepared", from: "state-starting", to: "cgroup", critical: true },
  {
    label: "RPC to supervisord, its fork+exec, perl's start, spec read",
    from: "cgroup",
    to: "launch-begin",
    critical: true,
  },
  { label: "  the RPC's round trip (alongside)", from: "cgroup", to: "rpc-done", critical: false },
  { label: "launcher: cgroup join", from: "launch-begin", to: "launch-cgroup", critical: true },
  { label: "launcher: env file read", from: "launch-cgroup", to: "launch-env", critical: true },
  {
    label: "launcher: listening socket (fd 3)",
    from: "launch-env",
    to: "launch-port",
    critical: true,
  },
  { label: "launcher: drop to user, exec", from: "launch-port", to: "launch-exec", critical: true },
  {
    label: "sandbox + app boot, to the app's answer (early send)",
    from: "launch-exec",
    to: "answer",
    critical: true,
  },
  { label: "answer streamed to the client", from: "answer", to: "received", critical: true },
  {
    label: "health check passed (after the exec)",
    from: "launch-exec",
    to: "healthy",
    critical: false,
  },
  {
    label: "  health passed - the app's answer",
    from: "answer",
    to: "healthy",
    critical: false,
  },
  {
    label: "after health: port owner, bind check",
    from: "healthy",
    to: "owner-checked",
    critical: false,
  },
  {
    label: "state running (store write)",
    from: "owner-checked",
    to: "state-running",
    critical: false,
  },
  { label: "start event (store write)", from: "state-running", to: "event", critical: false },
];

/**
 * The duration of each phase of one wake (ms, NaN when a mark is missing), from the marks of
 * `instance` and the client's send and receive times. "answer" is the early answer when the
 * held request went before the health check, else the proxied one.
 */
export function wakePhases(
  marks: readonly Mark[],
  instance: string,
  sent: number,
  received: number,
): { phases: Map<string, number>; refused: number } {
  const at = new Map<string, number>([
    ["sent", sent],
    ["received", received],
  ]);
  let refused = 0;
  for (const mark of marks) {
    if (mark.instance !== instance) continue;
    if (mark.point === "early-refused") refused++;
    const point = mark.point === "answer-early" ? "answer" : mark.point;
    // The first of each: a later one (a second proxy, a stray mark) is not this wake's.
    if (!at.has(point)) at.set(point, mark.at);
  }
  const phases = new Map<string, number>();
  for (const phase of WAKE_PHASES)
    phases.set(phase.label, (at.get(phase.to) ?? NaN) - (at.get(phase.from) ?? NaN));
  return { phases, refused };
}
