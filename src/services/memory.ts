import { readFile } from "node:fs/promises";
import { processTree } from "../lib/processes.js";
import { instanceCgroups } from "./cgroups.js";
import type { AccContext } from "./context.js";

/** Resident memory of a process in MB, 0 when it is gone. */
export async function rssMb(pid: number): Promise<number> {
  if (pid <= 0) return 0;
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** Resident memory of a process and all its descendants (the sandbox, the app, its workers). */
export async function treeRssMb(pid: number): Promise<number> {
  if (pid <= 0) return 0;
  let total = 0;
  for (const member of await processTree(pid)) total += await rssMb(member);
  return total;
}

/**
 * Memory of every running instance in MB (of those in `only`, when given), by name; empty when
 * supervisord is down. With cgroups, the whole cgroup's (every process of it, detached ones
 * included, and the page cache it keeps busy: see workingSet); without, the resident memory of
 * the program's process tree.
 */
export async function runningMemory(
  ctx: AccContext,
  only?: ReadonlySet<string>,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (only?.size === 0 || !(await ctx.processes.isRunning())) return out;
  const cgroups = await instanceCgroups(ctx);
  for (const [name, state] of await ctx.processes.allProgramStates()) {
    if (state.state !== "RUNNING" || (only !== undefined && !only.has(name))) continue;
    const bytes = await cgroups?.memoryBytes(name);
    out.set(name, bytes !== undefined ? bytes / 1024 ** 2 : await treeRssMb(state.pid));
  }
  return out;
}
