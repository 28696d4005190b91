// An opt-in trace of where a wake's time goes, read by bench/wake. ACC_TRACE names a file (root's
// or acc's own, never an instance's); each mark appends "<epoch ms> <instance> <point> [detail]".
// acc-launch (libexec) writes its marks to the same file, with the same clock (CLOCK_REALTIME).
// Unset, `trace` is undefined: a mark costs one check at its call site.
import { openSync, writeSync } from "node:fs";
import { errorMessage } from "./errors.js";

export interface Trace {
  mark(instance: string, point: string, detail?: string | number): void;
}

/**
 * How far performance.timeOrigin is from the wall clock: node takes it some way into its own
 * start-up, tens of ms late on a busy machine. Read at a tick of Date.now(): a read delayed
 * (the process preempted between the two clocks) only makes the offset smaller, so the largest
 * of a few ticks is kept (a spin of at most 5 ms, once per process).
 */
function wallClockOffset(): number {
  let best = -Infinity;
  for (let i = 0; i < 5; i++) {
    const first = Date.now();
    let now = first;
    while (now === first) now = Date.now();
    best = Math.max(best, now - (performance.timeOrigin + performance.now()));
  }
  return best;
}

let offset: number | undefined;

/** Wall-clock milliseconds with a microsecond fraction: comparable across processes. */
export function epochMs(): number {
  offset ??= wallClockOffset();
  return performance.timeOrigin + performance.now() + offset;
}

function openTrace(file: string): Trace {
  // Opened once, appended with one write per mark: a few microseconds each.
  const fd = openSync(file, "a", 0o600);
  epochMs();
  return {
    mark(instance, point, detail) {
      const line = `${epochMs().toFixed(3)} ${instance} ${point}${detail === undefined ? "" : ` ${detail}`}\n`;
      writeSync(fd, line);
    },
  };
}

function traceFromEnv(file: string | undefined): Trace | undefined {
  if (!file) return undefined;
  try {
    return openTrace(file);
  } catch (error) {
    // A trace is a measurement aid: acc runs on without it.
    process.stderr.write(`acc: ACC_TRACE ${file}: ${errorMessage(error)}; not tracing\n`);
    return undefined;
  }
}

export const trace: Trace | undefined = traceFromEnv(process.env.ACC_TRACE);
