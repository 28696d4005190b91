// Figures for benchmarks: medians and percentiles of several runs (these machines are noisy),
// and the small helpers the benches share (timed requests, process memory from /proc).
import { readdir, readFile, readlink } from "node:fs/promises";
import http from "node:http";
import { epochMs } from "../src/lib/trace.js";
import os from "node:os";

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? NaN;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

export function argValue(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  const raw = index >= 0 ? process.argv[index + 1] : undefined;
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`--${name} needs a positive number, got ${raw}`);
  return value;
}

export function printTable(rows: [string, string][]): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${value}`);
}

export function argString(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  const raw = index >= 0 ? process.argv[index + 1] : undefined;
  if (raw === undefined) return fallback;
  if (raw.startsWith("--")) throw new Error(`--${name} needs a value`);
  return raw;
}

/** "median X ms, p99 Y ms" of a set of times. */
export function spread(values: readonly number[]): string {
  return `median ${ms(median(values))}, p99 ${ms(percentile(values, 99))}`;
}

export interface TimedAnswer {
  /** 0 when no HTTP answer came (then `error` says why). */
  status: number;
  body: string;
  ms: number;
  /** When the request was made, in epoch ms (the clock of acc's trace, src/lib/trace.ts). */
  startedAt: number;
  error?: string;
}

/**
 * One request to 127.0.0.1:port with a Host header, timed with performance.now() from the call
 * to the last byte. It never rejects: a failure is an answer with status 0, so a herd can be
 * counted without one error cutting the count short.
 */
export function timedGet(
  port: number,
  host: string,
  options: { path?: string; agent?: http.Agent | false; timeoutMs?: number } = {},
): Promise<TimedAnswer> {
  const startedAt = epochMs();
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (answer: Omit<TimedAnswer, "ms" | "startedAt">): void => {
      if (settled) return;
      settled = true;
      resolve({
        ...answer,
        ms: performance.now() - started,
        startedAt,
      });
    };
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: options.path ?? "/",
        method: "GET",
        headers: { host, connection: "close" },
        agent: options.agent ?? false,
        timeout: options.timeoutMs ?? 120_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", (error) => done({ status: 0, body: "", error: error.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (error) => done({ status: 0, body: "", error: error.message }));
    req.end();
  });
}

/** Counts of what came back, e.g. "200 x998, 502 x2, ECONNRESET x1". */
export function tally(answers: readonly TimedAnswer[]): string {
  const counts = new Map<string, number>();
  for (const a of answers) {
    const key = a.status === 0 ? (a.error ?? "no answer") : String(a.status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].map(([key, count]) => `${key} x${count}`).join(", ");
}

/** A field of /proc/PID/status in kB (VmRSS, VmHWM), or NaN when the process is gone. */
export async function procStatusKb(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** Pids of the processes whose argv (split on NUL) satisfies `match`; gone ones are skipped. */
export async function findProcesses(
  match: (argv: string[], pid: number) => boolean,
): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0").filter(Boolean);
    } catch {
      continue;
    }
    if (match(argv, Number(entry))) pids.push(Number(entry));
  }
  return pids;
}

/** The pid of the `acc --home HOME server` process that supervisord runs for this home. */
export async function accServerPid(home: string): Promise<number> {
  const pids = await findProcesses((argv) => {
    const at = argv.indexOf("--home");
    return (
      argv.some((a) => a.endsWith("dist/acc.mjs")) &&
      at >= 0 &&
      argv[at + 1] === home &&
      argv.at(-1) === "server"
    );
  });
  if (pids.length !== 1)
    throw new Error(`expected one acc server for ${home}, found ${pids.length}`);
  return pids[0] ?? 0;
}

/** Instance processes of a home: `node` processes whose working folder is the home's code/. */
export async function instancePids(home: string): Promise<number[]> {
  const codeDir = `${home}/code/`;
  const pids: number[] = [];
  for (const pid of await findProcesses((argv) => argv.length > 0)) {
    try {
      const comm = (await readFile(`/proc/${pid}/comm`, "utf8")).trim();
      if (comm === "node" && (await readlink(`/proc/${pid}/cwd`)).startsWith(codeDir))
        pids.push(pid);
    } catch {
      // Exited while we looked: not an instance any more.
    }
  }
  return pids;
}

export function mb(kb: number): string {
  return `${(kb / 1024).toFixed(0)} MB`;
}

export function argFlag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/**
 * Drops NODE_* variables (NODE_OPTIONS, NODE_EXTRA_CA_CERTS...) from the environment acc is
 * booted with. acc's supervisord passes its whole environment on to every instance, so a
 * variable that slows node's start-up in the bench's shell (NODE_EXTRA_CA_CERTS: ~30 ms of
 * certificate parsing) would be counted as acc's; under systemd they are not there.
 */
export function dropNodeEnv(env: NodeJS.ProcessEnv): string[] {
  const dropped = Object.keys(env).filter((key) => key.startsWith("NODE_"));
  for (const key of dropped) delete env[key];
  return dropped;
}

/**
 * The kernel's TCP counters (TcpExt in /proc/net/netstat), machine-wide. ListenOverflows counts
 * connections dropped because a listen queue was full; each such client retries its SYN after
 * 1 s, which shows as a 1 s step in a herd's latency.
 */
export async function tcpCounters(): Promise<Map<string, number>> {
  const lines = (await readFile("/proc/net/netstat", "utf8"))
    .split("\n")
    .filter((l) => l.startsWith("TcpExt:"));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1) ?? [];
  return new Map(names.map((key, i) => [key, Number(values[i])]));
}

export function counterDelta(
  before: Map<string, number>,
  after: Map<string, number>,
  key: string,
): number {
  return (after.get(key) ?? 0) - (before.get(key) ?? 0);
}

/** The most frequent messages of an nginx error log, without time, pid and client details. */
export async function nginxLogSummary(file: string, top = 5): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return [];
  }
  const counts = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const message = line
      .replace(/^\S+ \S+ /, "")
      .replace(/\d+#\d+: (\*\d+ )?/, "")
      .replace(/, client: .*$/, "");
    counts.set(message, (counts.get(message) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([message, count]) => `${count} x ${message}`);
}

/** What else the machine was doing when the figures were taken: other load makes them slower. */
export function machineNote(): string {
  return `${os.cpus().length} CPUs, load average ${(os.loadavg()[0] ?? NaN).toFixed(2)} at the start`;
}

/**
 * Calls fn for each item, `jobs` at a time. Once a call failed or `stop` says so, no new item
 * is begun; the calls under way are waited for (a cleanup after this races none of them), then
 * the first error is thrown.
 */
export async function eachAtOnce<T>(
  items: readonly T[],
  jobs: number,
  fn: (item: T) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined && !stop()) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}

/**
 * Widens a test home's instance ports (the harness's slice holds 100) to n instances and a few
 * more, kept below Linux's ephemeral ports (32768+).
 */
export function widenInstancePorts(env: NodeJS.ProcessEnv, n: number): void {
  const portMin = Math.min(Number(env.ACC_INSTANCE_PORT_MIN), 32_767 - n - 10);
  env.ACC_INSTANCE_PORT_MIN = String(portMin);
  env.ACC_INSTANCE_PORT_MAX = String(portMin + n + 10);
}
