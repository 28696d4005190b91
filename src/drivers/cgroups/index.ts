// The cgroup boundary: every process an instance starts is in its own cgroup (acc-launch joins
// it before it drops to the instance's user), so acc can signal, count, limit and kill all of
// them, setsid children included. Root makes the folders under /sys/fs/cgroup, which only root
// can write: nothing here lives in an instance-writable place.
// cgroupfs is kernel memory, never a disk: a synchronous call on it takes microseconds, where
// an asynchronous one costs a thread-pool round trip (~0.1 ms each on a busy machine), and a
// start makes about ten of them.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { access, mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import type { Limits } from "../../core/limits.js";
import { hasErrno } from "../../lib/errors.js";
import {
  CONTROLLERS,
  instanceDirs,
  limitFiles,
  parseOomKills,
  parseProcCgroup,
  parseProcs,
  workingSet,
  type CgroupGroup,
  type CgroupLayout,
  type Controller,
  type HostCgroups,
} from "./render.js";

export {
  instanceDirs,
  planLayout,
  limitFiles,
  parseOomKills,
  parseProcCgroup,
  workingSet,
  CONTROLLERS,
} from "./render.js";
export type { CgroupGroup, CgroupLayout, Controller, HostCgroups } from "./render.js";

const ROOT = "/sys/fs/cgroup";
const POLL_MS = 10;

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch (error) {
    if (hasErrno(error, "ENOENT") || hasErrno(error, "ENOTDIR")) return false;
    throw error;
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if (hasErrno(error, "ENOENT") || hasErrno(error, "ENODEV")) return undefined;
    throw error;
  }
}

/** What this host's cgroup filesystem offers, and where this process sits in it. */
export async function readHostCgroups(root = ROOT): Promise<HostCgroups> {
  const procSelfCgroup = await readFile("/proc/self/cgroup", "utf8");
  const unifiedRoot = await exists(`${root}/cgroup.controllers`);
  let v2Controllers: string[] = [];
  if (unifiedRoot) {
    const own = parseProcCgroup(procSelfCgroup).get("") ?? "/";
    // The controllers our own group may hand down are those its parent enabled for it.
    const text = (await readIfExists(`${root}${own === "/" ? "" : own}/cgroup.controllers`)) ?? "";
    v2Controllers = text.trim().split(/\s+/);
  }
  const v1Controllers: Controller[] = [];
  if (!unifiedRoot) {
    for (const controller of CONTROLLERS) {
      if (await exists(`${root}/${controller}/cgroup.procs`)) v1Controllers.push(controller);
    }
  }
  return {
    root,
    unifiedRoot,
    v2Controllers,
    hybridUnified: !unifiedRoot && (await exists(`${root}/unified/cgroup.procs`)),
    v1Controllers,
    procSelfCgroup,
  };
}

async function mkdirIfMissing(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o755 });
  } catch (error) {
    if (!hasErrno(error, "EEXIST")) throw error;
  }
}

/**
 * Makes acc's groups of the layout (safe to run again). On v2, controllers pass down only to a
 * group without processes of its own: when acc's group (a systemd unit's, say) has some, they
 * move to a leaf beside acc's group first, as systemd asks of a delegated subtree.
 */
export async function setUpLayout(layout: CgroupLayout): Promise<void> {
  for (const group of layout.groups) {
    const parent = group.dir.slice(0, group.dir.lastIndexOf("/"));
    if (group.version === 2 && group.controllers.length > 0) {
      const enable = group.controllers.map((c) => `+${c}`).join(" ");
      try {
        await writeFile(`${parent}/cgroup.subtree_control`, enable);
      } catch (error) {
        if (!hasErrno(error, "EBUSY")) throw error;
        const leaf = `${group.dir}.self`;
        await mkdirIfMissing(leaf);
        const procs = parseProcs((await readIfExists(`${parent}/cgroup.procs`)) ?? "");
        for (const pid of procs) await movePid(`${leaf}/cgroup.procs`, pid);
        await writeFile(`${parent}/cgroup.subtree_control`, enable);
      }
      await mkdirIfMissing(group.dir);
      await writeFile(`${group.dir}/cgroup.subtree_control`, enable);
    } else {
      await mkdirIfMissing(group.dir);
    }
  }
}

async function movePid(procsFile: string, pid: number): Promise<void> {
  try {
    await writeFile(procsFile, String(pid));
  } catch (error) {
    // Gone meanwhile, or a kernel thread that cannot move.
    if (!hasErrno(error, "ESRCH") && !hasErrno(error, "EINVAL")) throw error;
  }
}

/** What acc does with instances' cgroups. */
export interface Cgroups {
  layout: CgroupLayout;
  /** The instance's folders, membership first: acc-launch joins each. */
  dirs(name: string): string[];
  /**
   * Readies the instance's cgroup for a start: made when missing, emptied of what an earlier run
   * left, its OOM count back to 0 (the memory group made again) so that oomKills tells of this
   * run only, and its limits set.
   */
  prepare(name: string, limits: Limits): Promise<void>;
  /** Sets the limits of an existing cgroup (a running instance: applied live). */
  applyLimits(name: string, limits: Limits): Promise<void>;
  /** The processes in the instance's cgroup; empty when it has none or no cgroup. */
  pids(name: string): Promise<number[]>;
  /** Kills every process of the cgroup and waits until it is empty; true when it had any. */
  killAll(name: string, timeoutMs?: number): Promise<boolean>;
  /** Empties (killAll) and removes the instance's cgroup. */
  remove(name: string): Promise<void>;
  /** Memory in use by the whole cgroup (workingSet), in bytes; undefined without one. */
  memoryBytes(name: string): Promise<number | undefined>;
  /** How many processes of the instance the kernel's OOM killer killed since its last start. */
  oomKills(name: string): Promise<number>;
  /** The instances that have a cgroup here. */
  names(): Promise<string[]>;
  /** Removes acc's own (empty) groups of this home, after its instances' (shutdown). */
  removeLayout(): Promise<void>;
}

export function createCgroups(layout: CgroupLayout): Cgroups {
  const membership = layout.groups[0] as CgroupGroup;
  const memoryGroup = layout.groups.find((g) => g.controllers.includes("memory"));
  const dir = (group: CgroupGroup, name: string): string => `${group.dir}/${name}`;

  function readSync(file: string): string | undefined {
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      if (hasErrno(error, "ENOENT") || hasErrno(error, "ENODEV")) return undefined;
      throw error;
    }
  }

  function mkdirSyncIfMissing(folder: string): void {
    try {
      mkdirSync(folder, { mode: 0o755 });
    } catch (error) {
      if (!hasErrno(error, "EEXIST")) throw error;
    }
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- async for callers, sync inside (see above)
  async function applyLimits(name: string, limits: Limits): Promise<void> {
    for (const group of layout.groups) {
      for (const { file, value } of limitFiles(group, limits)) {
        try {
          writeFileSync(`${dir(group, name)}/${file}`, value);
        } catch (error) {
          // memory.swap.max exists only with swap accounting: nothing to keep from swap then.
          if (file === "memory.swap.max" && hasErrno(error, "ENOENT")) continue;
          throw error;
        }
      }
    }
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- async for callers, sync inside (see above)
  async function oomKills(name: string): Promise<number> {
    if (!memoryGroup) return 0;
    const file = memoryGroup.version === 2 ? "memory.events" : "memory.oom_control";
    return parseOomKills(readSync(`${dir(memoryGroup, name)}/${file}`) ?? "");
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- async for callers, sync inside (see above)
  async function pids(name: string): Promise<number[]> {
    return parseProcs(readSync(`${dir(membership, name)}/cgroup.procs`) ?? "");
  }

  async function killAll(name: string, timeoutMs = 10_000): Promise<boolean> {
    let members = await pids(name);
    if (members.length === 0) return false;
    const killFile = `${dir(membership, name)}/cgroup.kill`;
    const hasKill = membership.version === 2 && existsSync(killFile);
    const deadline = Date.now() + timeoutMs;
    while (members.length > 0) {
      // cgroup.kill takes the whole group at once, forks under way included; without it each
      // pid gets SIGKILL and a fork that slipped between the read and the kill is caught next.
      if (hasKill) writeFileSync(killFile, "1");
      else for (const pid of members) killPid(pid);
      if (Date.now() > deadline) {
        throw new Error(`cgroup of ${name} still has processes ${members.join(", ")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      members = await pids(name);
    }
    return true;
  }

  /**
   * Removes a cgroup whose processes are gone. The kernel may still count a task that has just
   * exited (it leaves the group a moment after cgroup.procs stops listing it): EBUSY is retried.
   */
  async function removeEmptied(folder: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await rmdir(folder);
        return;
      } catch (error) {
        if (hasErrno(error, "ENOENT")) return;
        if (!hasErrno(error, "EBUSY") || Date.now() > deadline) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  return {
    layout,
    dirs: (name) => instanceDirs(layout, name),
    async prepare(name, limits) {
      // Made once and kept across stops: a start usually finds every folder there.
      if (!layout.groups.every((group) => existsSync(dir(group, name)))) {
        try {
          for (const group of layout.groups) mkdirSyncIfMissing(dir(group, name));
        } catch (error) {
          if (!hasErrno(error, "ENOENT")) throw error;
          // acc's own groups went (a shutdown, a remount): made again, then the instance's.
          await setUpLayout(layout);
          for (const group of layout.groups) mkdirSyncIfMissing(dir(group, name));
        }
      }
      await killAll(name);
      if (memoryGroup && (await oomKills(name)) > 0) {
        await removeEmptied(dir(memoryGroup, name));
        mkdirSyncIfMissing(dir(memoryGroup, name));
      }
      await applyLimits(name, limits);
    },
    applyLimits,
    pids,
    killAll,
    async remove(name) {
      await killAll(name);
      for (const group of layout.groups) await removeEmptied(dir(group, name));
    },
    async memoryBytes(name) {
      if (!memoryGroup) return undefined;
      const base = dir(memoryGroup, name);
      const v2 = memoryGroup.version === 2;
      const usage = await readIfExists(
        `${base}/${v2 ? "memory.current" : "memory.usage_in_bytes"}`,
      );
      if (usage === undefined) return undefined;
      const stat = (await readIfExists(`${base}/memory.stat`)) ?? "";
      return workingSet(Number(usage.trim()), stat, memoryGroup.version);
    },
    oomKills,
    async names() {
      try {
        const entries = await readdir(membership.dir, { withFileTypes: true });
        return entries.filter((e) => e.isDirectory()).map((e) => e.name);
      } catch (error) {
        if (hasErrno(error, "ENOENT")) return [];
        throw error;
      }
    },
    async removeLayout() {
      for (const group of layout.groups) {
        try {
          await rmdir(group.dir);
        } catch (error) {
          // Another instance's group still in it (a stop that failed): it stays, doctor sees it.
          if (!hasErrno(error, "ENOENT") && !hasErrno(error, "EBUSY")) throw error;
        }
      }
    },
  };
}

function killPid(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch (error) {
    if (!hasErrno(error, "ESRCH")) throw error;
  }
}
