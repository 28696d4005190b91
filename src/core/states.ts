import { AccError } from "../lib/errors.js";

export const INSTANCE_STATES = [
  "creating",
  "stopped",
  "starting",
  "running",
  "stopping",
  "failed",
  "suspended",
  "destroying",
] as const;

export type InstanceState = (typeof INSTANCE_STATES)[number];

/** Operations that move an instance between states. */
export type Operation = "create" | "start" | "stop" | "restart" | "suspend" | "resume" | "destroy";

/**
 * Every allowed transition. A state reached by a crash mid-operation (a transitional
 * state left behind) may be entered again by the same operation: side effects are
 * idempotent, so repeating them finishes the job.
 */
export const TRANSITIONS: Readonly<Record<InstanceState, readonly InstanceState[]>> = {
  creating: ["creating", "stopped", "starting", "failed", "destroying"],
  stopped: ["starting", "suspended", "destroying", "stopped"],
  starting: ["starting", "running", "failed", "stopping"],
  running: ["stopping", "running", "failed", "starting"],
  stopping: ["stopping", "stopped", "failed"],
  failed: ["starting", "stopping", "stopped", "suspended", "destroying"],
  suspended: ["stopped", "destroying"],
  destroying: ["destroying"],
};

export function canTransition(from: InstanceState, to: InstanceState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(name: string, from: InstanceState, to: InstanceState): void {
  if (!canTransition(from, to)) {
    throw new AccError("ACC_STATE", `instance ${name} is ${from} and cannot become ${to}`);
  }
}

/** States in which the instance's process may be alive. */
export function mayBeAlive(state: InstanceState): boolean {
  return state === "starting" || state === "running" || state === "stopping" || state === "failed";
}

export function isInstanceState(value: string): value is InstanceState {
  return (INSTANCE_STATES as readonly string[]).includes(value);
}

/** States no operation is in the middle of: an instance's hosts or certificate may change. */
export const SETTLED_STATES: ReadonlySet<InstanceState> = new Set([
  "running",
  "stopped",
  "suspended",
  "failed",
]);
