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

const DECIMAL_RE = /^\d{1,10}$/;

/** The parent pid from the text of /proc/<pid>/stat; undefined when it is not of that form. */
export function parentFromStat(text: string): number | undefined {
  // The command, in parentheses, may hold spaces and ")": the fields follow the last ")".
  const close = text.lastIndexOf(")");
  if (close === -1) return undefined;
  const ppid = text.slice(close + 2).split(" ")[1];
  return ppid !== undefined && DECIMAL_RE.test(ppid) ? Number(ppid) : undefined;
}

/** Errors that mean "this process (or its fd) is gone, or not ours to read". */
export function isGoneOrClosed(error: unknown): boolean {
  return (
    hasErrno(error, "ENOENT") ||
    hasErrno(error, "ESRCH") ||
    hasErrno(error, "EACCES") ||
    hasErrno(error, "EPERM")
  );
}

/** /proc/<pid>/<file>; undefined when the process is gone or closed to us. */
export async function readProcFile(pid: number, file: string): Promise<string | undefined> {
  try {
    return await readFile(`/proc/${pid}/${file}`, "utf8");
  } catch (error) {
    if (isGoneOrClosed(error)) return undefined;
    throw error;
  }
}

/** The real uid of a process (/proc/<pid>/status); undefined when gone or closed to us. */
export async function realUid(pid: number): Promise<number | undefined> {
  const status = await readProcFile(pid, "status");
  const uid = status === undefined ? undefined : /^Uid:\s+(\d+)/m.exec(status)?.[1];
  return uid === undefined ? undefined : Number(uid);
}

/** A process's environment as it started; undefined when gone or closed to us. */
export async function processEnviron(pid: number): Promise<Map<string, string> | undefined> {
  const raw = await readProcFile(pid, "environ");
  if (raw === undefined) return undefined;
  const env = new Map<string, string>();
  for (const entry of raw.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

/** The pids of every process we can see. */
export async function allPids(): Promise<number[]> {
  return (await readdir("/proc")).filter((e) => DECIMAL_RE.test(e)).map(Number);
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return false;
    throw error;
  }
}

async function childrenFromTasks(pid: number): Promise<number[]> {
  let tasks: string[];
  try {
    tasks = await readdir(`/proc/${pid}/task`);
  } catch (error) {
    if (isGoneOrClosed(error)) return [];
    throw error;
  }
  const children: number[] = [];
  // A child's parent is the thread that forked it: every thread's list counts.
  for (const tid of tasks) {
    try {
      const text = await readFile(`/proc/${pid}/task/${tid}/children`, "utf8");
      for (const child of text.split(" ")) if (DECIMAL_RE.test(child)) children.push(Number(child));
    } catch (error) {
      if (!isGoneOrClosed(error)) throw error;
    }
  }
  return children;
}

async function childrenByParent(): Promise<Map<number, number[]>> {
  const byParent = new Map<number, number[]>();
  for (const pid of await allPids()) {
    let stat: string;
    try {
      stat = await readFile(`/proc/${pid}/stat`, "utf8");
    } catch (error) {
      if (isGoneOrClosed(error)) continue;
      throw error;
    }
    const parent = parentFromStat(stat);
    if (parent === undefined) continue;
    const siblings = byParent.get(parent);
    if (siblings) siblings.push(pid);
    else byParent.set(parent, [pid]);
  }
  return byParent;
}

/**
 * For each root pid, itself and its descendants. Read from /proc/<pid>/task/<tid>/children
 * where the kernel has them (CONFIG_PROC_CHILDREN: a few reads per process of the tree), else
 * from the parent pid of every process (one pass over /proc for all roots). A process that
 * left its tree (a daemon that forked twice belongs to init) is not found.
 */
export async function processTrees(roots: readonly number[]): Promise<Map<number, number[]>> {
  const trees = new Map<number, number[]>();
  if (roots.length === 0) return trees;
  let childrenOf: (pid: number) => Promise<number[]>;
  if (await exists(`/proc/${process.pid}/task/${process.pid}/children`)) {
    childrenOf = childrenFromTasks;
  } else {
    const byParent = await childrenByParent();
    childrenOf = (pid) => Promise.resolve(byParent.get(pid) ?? []);
  }
  for (const root of roots) {
    const seen = new Set<number>([root]);
    const queue = [root];
    for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
      for (const child of await childrenOf(pid)) {
        if (seen.has(child)) continue;
        seen.add(child);
        queue.push(child);
      }
    }
    trees.set(root, [...seen]);
  }
  return trees;
}

/** pid and all its descendants, parents before children. */
export async function processTree(pid: number): Promise<number[]> {
  return (await processTrees([pid])).get(pid) ?? [pid];
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
