// Where an instance's cgroup lives and what its limit files say: pure, from what the I/O edge
// (index.ts) read of the host. Two layouts: cgroup v2 alone (a systemd host), or the v1
// controllers with a controller-less v2 hierarchy beside them (/sys/fs/cgroup/unified), where v1
// carries the limits and v2 the membership and cgroup.kill.
import type { Limits } from "../../core/limits.js";

export type Controller = "memory" | "cpu" | "pids";
export const CONTROLLERS: readonly Controller[] = ["memory", "cpu", "pids"];

/** acc's group for this home in one hierarchy; an instance's is `${dir}/${name}`. */
export interface CgroupGroup {
  dir: string;
  version: 1 | 2;
  /** The controllers acc sets limits with in this hierarchy. */
  controllers: Controller[];
}

export interface CgroupLayout {
  kind: "v2" | "hybrid" | "v1";
  /** The group whose cgroup.procs lists an instance's processes (and cgroup.kill ends them) first. */
  groups: CgroupGroup[];
}

/** What the host offers, as index.ts reads it. */
export interface HostCgroups {
  /** The cgroup filesystem's mount point, /sys/fs/cgroup. */
  root: string;
  /** /sys/fs/cgroup is itself the v2 hierarchy (cgroup.controllers there). */
  unifiedRoot: boolean;
  /** The controllers v2 offers (cgroup.controllers of our own group's parent chain). */
  v2Controllers: readonly string[];
  /** A v2 hierarchy without controllers at ROOT/unified (the hybrid layout). */
  hybridUnified: boolean;
  /** v1 hierarchies mounted at ROOT/<controller>. */
  v1Controllers: readonly Controller[];
  /** /proc/self/cgroup. */
  procSelfCgroup: string;
}

/** /proc/self/cgroup as hierarchy -> path: "" for v2 ("0::/path"), else each controller's name. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^\d+:([^:]*):(\/.*)$/.exec(line);
    if (!match) continue;
    const [, names = "", where = "/"] = match;
    if (names === "") out.set("", where);
    else for (const name of names.split(",")) out.set(name, where);
  }
  return out;
}

function join(...parts: string[]): string {
  return parts.join("/").replace(/\/+/g, "/").replace(/\/$/, "");
}

/**
 * acc's groups for a home, nested under the cgroup acc runs in (on systemd, the delegated
 * subtree of its unit), so that two homes, or acc and the host's own services, never share one.
 * Undefined when the host has no cgroup hierarchy acc can use.
 */
export function planLayout(host: HostCgroups, groupName: string): CgroupLayout | undefined {
  const own = parseProcCgroup(host.procSelfCgroup);
  if (host.unifiedRoot) {
    const controllers = CONTROLLERS.filter((c) => host.v2Controllers.includes(c));
    return {
      kind: "v2",
      groups: [{ dir: join(host.root, own.get("") ?? "/", groupName), version: 2, controllers }],
    };
  }
  const groups: CgroupGroup[] = [];
  if (host.hybridUnified) {
    groups.push({
      dir: join(host.root, "unified", own.get("") ?? "/", groupName),
      version: 2,
      controllers: [],
    });
  }
  for (const controller of host.v1Controllers) {
    groups.push({
      dir: join(host.root, controller, own.get(controller) ?? "/", groupName),
      version: 1,
      controllers: [controller],
    });
  }
  if (groups.length === 0) return undefined;
  return { kind: host.hybridUnified ? "hybrid" : "v1", groups };
}

/** The instance's cgroup folders, the membership one first (acc-launch joins each). */
export function instanceDirs(layout: CgroupLayout, name: string): string[] {
  return layout.groups.map((group) => `${group.dir}/${name}`);
}

/** The CFS period acc uses: 100 ms, the kernel's default. */
export const CPU_PERIOD_US = 100_000;

/**
 * The files to write, in order, to set the limits in one group of the instance (relative to its
 * folder); a missing limit writes the "no limit" value, so a removed limit is lifted live.
 */
export function limitFiles(group: CgroupGroup, limits: Limits): { file: string; value: string }[] {
  const out: { file: string; value: string }[] = [];
  const v2 = group.version === 2;
  for (const controller of group.controllers) {
    switch (controller) {
      case "memory":
        out.push(
          v2
            ? {
                file: "memory.max",
                value: limits.memory === undefined ? "max" : String(limits.memory),
              }
            : {
                file: "memory.limit_in_bytes",
                value: limits.memory === undefined ? "-1" : String(limits.memory),
              },
        );
        // Without this the kernel swaps the app out instead of keeping it to its limit.
        if (v2)
          out.push({ file: "memory.swap.max", value: limits.memory === undefined ? "max" : "0" });
        break;
      case "cpu": {
        const quota =
          limits.cpu === undefined
            ? undefined
            : Math.max(1000, Math.round(limits.cpu * CPU_PERIOD_US));
        if (v2) out.push({ file: "cpu.max", value: `${quota ?? "max"} ${CPU_PERIOD_US}` });
        else {
          out.push({ file: "cpu.cfs_period_us", value: String(CPU_PERIOD_US) });
          out.push({ file: "cpu.cfs_quota_us", value: quota === undefined ? "-1" : String(quota) });
        }
        break;
      }
      case "pids":
        out.push({
          file: "pids.max",
          value: limits.pids === undefined ? "max" : String(limits.pids),
        });
        break;
    }
  }
  return out;
}

/** The `oom_kill N` count of memory.events (v2) or memory.oom_control (v1); 0 when absent. */
export function parseOomKills(text: string): number {
  const match = /^oom_kill (\d+)$/m.exec(text);
  return match ? Number(match[1]) : 0;
}

/**
 * The instance's memory in use: the cgroup's whole charge (its processes' memory and the page
 * cache they caused) minus the inactive file cache, which the kernel reclaims first under
 * pressure: what `docker stats` and the kubelet call the working set.
 */
export function workingSet(usage: number, stat: string, version: 1 | 2): number {
  const key = version === 2 ? "inactive_file" : "total_inactive_file";
  const match = new RegExp(`^${key} (\\d+)$`, "m").exec(stat);
  const inactive = match ? Number(match[1]) : 0;
  return Math.max(0, usage - inactive);
}

/** The pids of a cgroup.procs file. */
export function parseProcs(text: string): number[] {
  return text
    .split("\n")
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}
