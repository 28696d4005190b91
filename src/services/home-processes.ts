import {
  describeHomeProcesses,
  type HomeProcessKind,
  type HomeProcessSummary,
} from "../core/home-processes.js";
export {
  describeHomeProcesses,
  type HomeProcessKind,
  type HomeProcessSummary,
} from "../core/home-processes.js";
// What of this home runs, read from pid files and /proc rather than asked of acc's supervisord:
// when that supervisord dies (kill -9, the OOM killer), what it ran goes on as orphans. Another
// acc home may run on the same machine, so a process counts as this home's only when proven:
// a pid file of this home naming a process that is what the file says (nginx's title names this
// home's nginx.conf, the postmaster's working folder is this home's cluster), a process of acc's
// own user whose environment names this home's supervisord socket (set by supervisord for what
// it spawns; nginx and Postgres overwrite theirs, hence their pid files), as root a process of an
// instance's user whose home in /etc/passwd is this home's instance folder, and the descendants
// of those.
import { readFile, readlink, realpath } from "node:fs/promises";
import { instancePaths } from "../core/paths.js";
import { readMasterPid } from "../drivers/nginx/control.js";
import { clusterLayout } from "../drivers/postgres/render.js";
import { AccError, hasErrno } from "../lib/errors.js";
import { readFileIfExists } from "../lib/files.js";
import {
  allPids,
  isGoneOrClosed,
  processEnviron,
  processName,
  processTrees,
  readProcFile,
  realUid,
  signalProcess,
} from "../lib/processes.js";
import { instanceCgroups } from "./cgroups.js";
import type { AccContext } from "./context.js";
import { instanceUserName } from "./users.js";
import { createSemaphore } from "./wake.js";

export interface HomeProcess {
  pid: number;
  kind: HomeProcessKind;
  /** For kind "instance". */
  instance?: string;
  /** Start time in clock ticks since boot (/proc/PID/stat): a pid reused since is left alone. */
  started: string;
  /** The process a pid file names (nginx's master, the postmaster): the one to signal. */
  leader: boolean;
}

interface Stat {
  ppid: number;
  started: string;
  zombie: boolean;
}

async function readStat(pid: number): Promise<Stat | undefined> {
  const text = await readProcFile(pid, "stat");
  if (text === undefined) return undefined;
  // The command, in parentheses, may hold spaces and ")": the fields follow the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const [state, ppid, started] = [fields[0], fields[1], fields[19]];
  if (state === undefined || ppid === undefined || started === undefined) return undefined;
  return { ppid: Number(ppid), started, zombie: state === "Z" || state === "X" };
}

async function pidIn(file: string): Promise<number | undefined> {
  const first = (await readFileIfExists(file))?.split("\n")[0]?.trim();
  const pid = Number(first);
  return first !== undefined && /^\d{1,10}$/.test(first) && pid > 1 ? pid : undefined;
}

/** This process and its ancestors: never counted, never signalled. */
async function selfAndAncestors(): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let pid = process.pid; pid > 1 && !seen.has(pid);) {
    seen.add(pid);
    const stat = await readStat(pid);
    if (stat === undefined) break;
    pid = stat.ppid;
  }
  return seen;
}

/** uid -> instance, for the instances of this home whose user's home is their folder here. */
async function instanceUids(
  ctx: AccContext,
  names: readonly string[],
): Promise<Map<number, string>> {
  const passwd = await readFile("/etc/passwd", "utf8");
  const byUser = new Map<string, { uid: number; home: string }>();
  for (const line of passwd.split("\n")) {
    const [user, , uid, , , home] = line.split(":");
    if (user === undefined || uid === undefined || home === undefined) continue;
    if (/^\d{1,10}$/.test(uid) && !byUser.has(user)) byUser.set(user, { uid: Number(uid), home });
  }
  const uids = new Map<number, string>();
  for (const name of names) {
    const entry = byUser.get(instanceUserName(name));
    const root = instancePaths(ctx.home, name).root;
    // Users are global: one of the same name made by another home has its home there.
    if (entry !== undefined && (entry.home === root || entry.home.startsWith(`${root}/`)))
      uids.set(entry.uid, name);
  }
  return uids;
}

const SERVICE_KINDS: Record<string, HomeProcessKind> = {
  "acc-server": "acc server",
  "acc-ports": "acc-ports",
  "acc-nginx": "nginx",
  "acc-postgres": "postgres",
};

/**
 * Every live process of this home (see the top of this file), acc's supervisord included when
 * its pid file names it; none of this process's own ancestors.
 */
export async function findHomeProcesses(ctx: AccContext): Promise<HomeProcess[]> {
  const { paths } = ctx;
  const skip = await selfAndAncestors();
  const found = new Map<number, Omit<HomeProcess, "started">>();
  const add = (pid: number, entry: Omit<HomeProcess, "started" | "pid">): void => {
    if (!skip.has(pid) && !found.has(pid)) found.set(pid, { pid, ...entry });
  };

  const supervisord = await pidIn(paths.supervisorPid);
  if (supervisord !== undefined) {
    const cmdline = (await readProcFile(supervisord, "cmdline"))?.split("\0") ?? [];
    if (cmdline.includes(paths.supervisorConf))
      add(supervisord, { kind: "supervisord", leader: true });
  }
  const nginx = await readMasterPid(paths.nginxPid, paths.nginxConf);
  if (nginx !== undefined) add(nginx, { kind: "nginx", leader: true });
  if (ctx.config.postgres === "managed") {
    const data = clusterLayout(paths.postgres).data;
    const postmaster = await pidIn(`${data}/postmaster.pid`);
    if (postmaster !== undefined) {
      const cwd = await readlink(`/proc/${postmaster}/cwd`).catch((error: unknown) => {
        if (isGoneOrClosed(error)) return undefined;
        throw error;
      });
      const dataDir = await realpath(data).catch((error: unknown) => {
        if (hasErrno(error, "ENOENT")) return undefined;
        throw error;
      });
      if (cwd !== undefined && cwd === dataDir) add(postmaster, { kind: "postgres", leader: true });
    }
  }

  const instances = (await ctx.store.listInstances()).map((i) => i.name);
  const known = new Set(instances);
  const byUid = ctx.isRoot ? await instanceUids(ctx, instances) : new Map<number, string>();
  const byDataDir = new Map(instances.map((name) => [instancePaths(ctx.home, name).data, name]));
  const myUid = process.getuid?.() ?? -1;
  const supervisorUrl = `unix://${paths.supervisorSocket}`;
  for (const pid of await allPids()) {
    if (skip.has(pid) || found.has(pid)) continue;
    const uid = await realUid(pid);
    if (uid === undefined) continue;
    const owner = byUid.get(uid);
    if (owner !== undefined) {
      add(pid, { kind: "instance", instance: owner, leader: false });
      continue;
    }
    // Only acc's own user's processes prove anything by their environment: any other user
    // (an instance's, say) could write whatever it likes there.
    if (uid !== myUid) continue;
    const env = await processEnviron(pid);
    if (env === undefined) continue;
    if (env.get("SUPERVISOR_SERVER_URL") === supervisorUrl) {
      const program = env.get("SUPERVISOR_PROCESS_NAME") ?? "";
      const name = program.startsWith("i-") ? program.slice(2) : undefined;
      if (name !== undefined && known.has(name))
        add(pid, { kind: "instance", instance: name, leader: false });
      else add(pid, { kind: SERVICE_KINDS[program] ?? "acc", leader: false });
    } else if (!ctx.isRoot) {
      // Not root: instances run as acc's user, with the environment acc-launch gave them.
      const name = byDataDir.get(env.get("DATA_DIR") ?? "");
      if (name !== undefined && env.get("ACC_INSTANCE") === name)
        add(pid, { kind: "instance", instance: name, leader: false });
    }
  }

  const roots = [...found.values()];
  const trees = await processTrees(roots.map((r) => r.pid));
  for (const root of roots) {
    for (const pid of trees.get(root.pid) ?? []) {
      add(pid, {
        kind: root.kind,
        ...(root.instance !== undefined ? { instance: root.instance } : {}),
        leader: false,
      });
    }
  }

  const live: HomeProcess[] = [];
  for (const entry of found.values()) {
    const stat = await readStat(entry.pid);
    if (stat !== undefined && !stat.zombie) live.push({ ...entry, started: stat.started });
  }
  return live.sort((a, b) => a.pid - b.pid);
}

/** Still the same live process (not exited, not a zombie, its pid not reused). */
async function stillRuns(p: HomeProcess): Promise<boolean> {
  const stat = await readStat(p.pid);
  return stat !== undefined && !stat.zombie && stat.started === p.started;
}

/** Sends a signal to the process found, unless it has gone (or its pid was reused since). */
async function signalFound(p: HomeProcess, signal: NodeJS.Signals): Promise<void> {
  if (await stillRuns(p)) signalProcess(p.pid, signal);
}

async function waitGone(procs: readonly HomeProcess[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let running = false;
    for (const p of procs) if (await stillRuns(p)) running = true;
    if (!running) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Signals in turn, each followed by a wait for every process of the group to end; SIGKILL to
 * what is left after the last. With `leaders`, the signals go to the pid-file process only
 * (nginx's master, the postmaster), which takes its workers with it.
 */
async function stopGroup(
  procs: readonly HomeProcess[],
  steps: readonly [NodeJS.Signals, number][],
  options: { leaders?: boolean } = {},
): Promise<void> {
  if (procs.length === 0) return;
  const targets = options.leaders ? procs.filter((p) => p.leader) : procs;
  for (const [signal, waitMs] of steps) {
    for (const p of targets.length > 0 ? targets : procs) await signalFound(p, signal);
    if (await waitGone(procs, waitMs)) return;
  }
  for (const p of procs) await signalFound(p, "SIGKILL");
  await waitGone(procs, 5000);
}

/** The instance's stop timeout, from its supervisord program file (else acc.toml's). */
async function stopTimeoutMs(ctx: AccContext, name: string): Promise<number> {
  const conf = await readFileIfExists(`${ctx.paths.programs}/${name}.conf`);
  const secs = conf === undefined ? undefined : /^stopwaitsecs=(\d+)$/m.exec(conf)?.[1];
  return secs === undefined ? ctx.config.stop_timeout : Number(secs) * 1000;
}

/**
 * Stops what is left of one instance as a stop does: SIGTERM to its processes but bubblewrap's
 * (which passes no signal on and would take the app down at once), the instance's stop timeout
 * to end, then SIGKILL to what remains.
 */
export async function stopOrphanInstance(
  ctx: AccContext,
  name: string,
  procs: readonly HomeProcess[],
): Promise<void> {
  for (const p of procs)
    if ((await processName(p.pid)) !== "bwrap") await signalFound(p, "SIGTERM");
  if (!(await waitGone(procs, await stopTimeoutMs(ctx, name)))) {
    for (const p of procs) await signalFound(p, "SIGKILL");
    await waitGone(procs, 5000);
  }
  // Whatever else its cgroup holds (a detached child whose parent died with supervisord) goes
  // too, as after any stop.
  await (await instanceCgroups(ctx))?.killAll(name);
}

/** At most this many orphaned instances are stopped at once. */
const STOP_CONCURRENCY = 8;

/**
 * Stops the processes findHomeProcesses found, each kind the way it stops cleanly: what would
 * start instances or pass them requests first (a supervisord that does not answer, acc server,
 * nginx with a graceful QUIT), then the instances as a stop does, acc-ports, and last Postgres
 * with a fast shutdown (SIGINT: open sessions are ended, the data is written out; SIGQUIT, an
 * immediate shutdown, only when that has not ended it within a minute). Throws naming what
 * still runs.
 */
export async function stopHomeProcesses(
  ctx: AccContext,
  found: readonly HomeProcess[],
): Promise<void> {
  const of = (...kinds: HomeProcessKind[]): HomeProcess[] =>
    found.filter((p) => kinds.includes(p.kind));
  await stopGroup(of("supervisord"), [["SIGTERM", 30_000]], { leaders: true });
  await stopGroup(of("acc server", "acc"), [["SIGTERM", 15_000]]);
  await stopGroup(
    of("nginx"),
    [
      ["SIGQUIT", 10_000],
      ["SIGTERM", 5000],
    ],
    { leaders: true },
  );
  const byInstance = new Map<string, HomeProcess[]>();
  for (const p of of("instance")) {
    const name = p.instance ?? "";
    byInstance.set(name, [...(byInstance.get(name) ?? []), p]);
  }
  const limit = createSemaphore(STOP_CONCURRENCY);
  await Promise.all(
    [...byInstance].map(([name, procs]) => limit.run(() => stopOrphanInstance(ctx, name, procs))),
  );
  await stopGroup(of("acc-ports"), [["SIGTERM", 5000]]);
  await stopGroup(
    of("postgres"),
    [
      ["SIGINT", 60_000],
      ["SIGQUIT", 10_000],
    ],
    { leaders: true },
  );
  const left: HomeProcess[] = [];
  for (const p of found) if (await stillRuns(p)) left.push(p);
  if (left.length > 0) {
    throw new AccError(
      "ACC_FAILED",
      `could not stop ${left.length} process(es) of this home left by its supervisord: ${describeHomeProcesses(left)}`,
      { hint: "stop them (by pid), then run acc boot again" },
    );
  }
}

/** What reports show of a process found: pid, kind, instance. */
export function summarizeHomeProcess(p: HomeProcess): HomeProcessSummary {
  return {
    pid: p.pid,
    kind: p.kind,
    ...(p.instance !== undefined ? { instance: p.instance } : {}),
  };
}
