// Helpers of the nginx benches (bench/nginx-layout.ts, bench/tls.ts): one nginx run by
// hand with acc's driver, its processes' memory and its worker's user.
import { readFile } from "node:fs/promises";
import { listAcceptingWorkers } from "../src/drivers/nginx/control.js";
import type { Mutex } from "../src/drivers/nginx/index.js";
import { exec } from "../src/lib/exec.js";
import { waitFor } from "../test/harness/common.js";

export function createLocalMutex(): Mutex {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    run<T>(_key: string, fn: () => Promise<T>): Promise<T> {
      const result = tail.then(() => fn());
      tail = result.catch(() => undefined);
      return result;
    },
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN);
}

export async function childrenOf(pid: number): Promise<number[]> {
  const raw = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8");
  return raw.split(/\s+/).filter(Boolean).map(Number);
}

/**
 * The master's workers once a reload has settled (the old generation's workers gone, every
 * child accepting), so that only the live generation's memory is counted.
 */
export function settledWorkers(master: number, timeoutMs: number): Promise<number[]> {
  return waitFor(
    "the old workers to exit",
    async () => {
      const children = await childrenOf(master);
      const accepting = (await listAcceptingWorkers(master)) ?? [];
      return children.length === accepting.length ? children : undefined;
    },
    timeoutMs,
  );
}

/** CPU time (user and system, in clock ticks) a master's current workers used so far. */
export async function workersTicks(master: number): Promise<number> {
  let ticks = 0;
  for (const pid of await childrenOf(master)) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command's closing parenthesis: state is the 3rd, utime the 14th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks;
}

export async function workerUser(): Promise<string> {
  for (const name of ["acc_nginx", "nobody"]) {
    try {
      await exec("id", ["-u", name], { timeoutMs: 5_000 });
      return name;
    } catch {
      // Not on this machine: try the next one.
    }
  }
  throw new Error("neither user acc_nginx nor nobody exists");
}
