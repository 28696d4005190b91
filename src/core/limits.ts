// Resource limits of an instance (memory, cpu, pids): how they are written, parsed and merged.
// The cgroups driver turns them into the kernel's files.
import { AccError } from "../lib/errors.js";
import { showValue } from "./validate.js";

/** An instance's limits; a missing one is "none" (0 in acc.toml means none too). */
export interface Limits {
  /** Bytes of memory (the whole cgroup: the app, its children, the kernel's page cache for it). */
  memory?: number;
  /** A fraction of one CPU's time (0.5: half a CPU; 2: two CPUs), enforced as a CFS quota. */
  cpu?: number;
  /** At most this many processes and threads. */
  pids?: number;
}

export const LIMIT_KEYS = ["memory", "cpu", "pids"] as const;
export type LimitKey = (typeof LIMIT_KEYS)[number];

export function isLimitKey(key: string): key is LimitKey {
  return (LIMIT_KEYS as readonly string[]).includes(key);
}

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Below this the app cannot even start; the kernel would OOM-kill it at once. */
const MIN_MEMORY = 4 * 1024 ** 2;
/** The CFS quota's smallest share of a 100 ms period is 1 ms. */
const MIN_CPU = 0.01;
const MAX_CPU = 1024;
const MAX_PIDS = 4_194_304;

/**
 * One limit's value as a user writes it: memory "512M" (K, M, G, T, powers of 1024), cpu "0.5"
 * (of one CPU), pids "200"; "0", "none" or "" mean no limit (undefined). `where` names the
 * source in the error.
 */
export function parseLimit(key: LimitKey, raw: string | number, where: string): number | undefined {
  const text = String(raw).trim().toLowerCase();
  const bad = (hint: string): AccError =>
    new AccError("ACC_INVALID", `invalid ${key} limit ${showValue(String(raw))} in ${where}`, {
      hint,
    });
  if (text === "" || text === "none" || text === "0") return undefined;
  switch (key) {
    case "memory": {
      const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(text);
      const unit = match ? UNITS[match[2] ?? ""] : undefined;
      if (!match || unit === undefined) throw bad("expected a size such as 512M or 2G (or none)");
      const bytes = Math.round(Number(match[1]) * unit);
      if (bytes < MIN_MEMORY) throw bad("at least 4M");
      if (!Number.isSafeInteger(bytes)) throw bad("too large");
      return bytes;
    }
    case "cpu": {
      if (!/^\d+(\.\d+)?$/.test(text)) throw bad("expected a share of one CPU such as 0.5 or 2");
      const cpu = Number(text);
      if (cpu < MIN_CPU || cpu > MAX_CPU) throw bad(`from ${MIN_CPU} to ${MAX_CPU} CPUs`);
      return cpu;
    }
    case "pids": {
      if (!/^\d+$/.test(text)) throw bad("expected a whole number of processes");
      const pids = Number(text);
      if (pids > MAX_PIDS) throw bad(`at most ${MAX_PIDS}`);
      return pids;
    }
  }
}

/** `memory=512M` style settings (acc create --limit, acc set) into limits; null clears one. */
export function parseLimitArgs(
  args: readonly string[],
  where: string,
): Partial<Record<LimitKey, number | null>> {
  const out: Partial<Record<LimitKey, number | null>> = {};
  for (const arg of args) {
    const eq = arg.indexOf("=");
    const key = eq < 0 ? arg : arg.slice(0, eq);
    if (eq < 0 || !isLimitKey(key)) {
      throw new AccError("ACC_INVALID", `invalid limit ${showValue(arg)} in ${where}`, {
        hint: "expected memory=SIZE, cpu=CPUS or pids=N (none to remove it)",
      });
    }
    out[key] = parseLimit(key, arg.slice(eq + 1), where) ?? null;
  }
  return out;
}

/**
 * The limits in force: the instance's own (null: none, overriding the rest), else its model's,
 * else acc.toml's.
 */
export function effectiveLimits(
  config: Limits,
  model: Limits,
  own: Partial<Record<LimitKey, number | null>>,
): Limits {
  const out: Limits = {};
  for (const key of LIMIT_KEYS) {
    const mine = own[key];
    const value = mine === null ? undefined : (mine ?? model[key] ?? config[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** A limit as a user reads it: 512M, 0.5, 200. */
export function formatLimit(key: LimitKey, value: number | undefined | null): string {
  if (value === undefined || value === null) return "none";
  if (key !== "memory") return String(value);
  for (const [unit, size] of [
    ["G", 1024 ** 3],
    ["M", 1024 ** 2],
    ["K", 1024],
  ] as const) {
    if (value % size === 0) return `${value / size}${unit}`;
  }
  return String(value);
}
