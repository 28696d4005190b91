// What /proc says about processes: their children, names and end. Read-only, by pid.
import { access, readdir, readFile } from "node:fs/promises";
import { hasErrno } from "./errors.js";

/** The process's name (comm), or undefined when it is gone. */
export async function processName(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
  } catch (error) {
    if (hasErrno(error, "ENOENT") || hasErrno(error, "ESRCH")) return undefined;
    throw error;
  }
}

/** The children of every thread of pid (a child belongs to the thread that forked it). */
export async function childrenOf(pid: number): Promise<number[]> {
  let tasks: string[];
  try {
    tasks = await readdir(`/proc/${pid}/task`);
  } catch (error) {
    if (hasErrno(error, "ENOENT") || hasErrno(error, "ESRCH")) return [];
    throw error;
  }
  const out: number[] = [];
  for (const task of tasks) {
    try {
      const text = await readFile(`/proc/${pid}/task/${task}/children`, "utf8");
      for (const word of text.split(/\s+/)) if (word !== "") out.push(Number(word));
    } catch (error) {
      if (!hasErrno(error, "ENOENT") && !hasErrno(error, "ESRCH")) throw error;
    }
  }
  return out;
}

/** pid and all its descendants, parents before children. */
export async function processTree(pid: number): Promise<number[]> {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(await childrenOf(out[i] as number)));
  return out;
}

/** Sends a signal; false when the process was already gone. */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if (hasErrno(error, "ESRCH")) return false;
    throw error;
  }
}

/** Whether the process has exited: no such pid, or a zombie nobody has reaped yet. */
export async function processGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (hasErrno(error, "ESRCH")) return true;
    if (!hasErrno(error, "EPERM")) throw error;
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The state letter follows the command, which is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch (error) {
    // Reaped between the open and the read: gone.
    if (hasErrno(error, "ESRCH")) return true;
    // No stat file: the process is gone, unless this system has no /proc at all.
    if (hasErrno(error, "ENOENT"))
      return await access("/proc/self/stat").then(
        () => true,
        () => false,
      );
    throw error;
  }
}
