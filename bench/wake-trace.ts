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

// [label, from, to, on the held request's path]
const PHASES: [string, string, string, boolean][] = [
  ["nginx: refused connect, hand-over to the waker", "sent", "request", true],
  ["waker: lookup, wake filter, restart rule (store reads)", "request", "decided", true],
  ["waker: manifest, start rule, room (max_running)", "decided", "room", true],
  ["lease taken (store write)", "room", "lease", true],
  ["start: reread, restore check, manifest, start rule", "lease", "checked", true],
  ["state starting (store write)", "checked", "state-starting", true],
  ["cgroup prepared", "state-starting", "cgroup", true],
  ["RPC to supervisord, its fork, the exec of perl", "cgroup", "launch-start", true],
  ["perl: compile acc-launch, read the spec", "launch-start", "launch-begin", true],
  ["  the RPC's round trip (alongside)", "cgroup", "rpc-done", false],
  ["launcher: cgroup join", "launch-begin", "launch-cgroup", true],
  ["launcher: env file read", "launch-cgroup", "launch-env", true],
  ["launcher: socket (fd 3), other descriptors closed", "launch-env", "launch-port", true],
  ["launcher: drop to user, exec", "launch-port", "launch-exec", true],
  ["sandbox + app boot, to the app's answer (early send)", "launch-exec", "answer", true],
  ["answer streamed to the client", "answer", "received", true],
  ["health check passed (after the exec)", "launch-exec", "healthy", false],
  ["  health passed - the app's answer", "answer", "healthy", false],
  ["after health: port owner, bind check", "healthy", "owner-checked", false],
  ["state running (store write)", "owner-checked", "state-running", false],
  ["start event (store write)", "state-running", "event", false],
];

export const WAKE_PHASES: readonly Phase[] = PHASES.map(([label, from, to, critical]) => ({
  label,
  from,
  to,
  critical,
}));

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
