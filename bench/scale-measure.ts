// What bench/scale measures at each size of a booted home, and the table it prints: a column
// per size, and the growth from the first size to the last.
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { homePaths } from "../src/core/paths.js";
import { createNginx } from "../src/drivers/nginx/index.js";
import { exec } from "../src/lib/exec.js";
import type { AccContext } from "../src/services/context.js";
import { monitorPass, type MonitorReport } from "../src/services/monitor.js";
import { openContext } from "../src/services/open.js";
import { ACC_ROOT, type AccHome } from "../test/harness/acc.js";
import { cpuMs, runMeasured } from "./run-measured.js";
import { childrenOf } from "./nginx-bench.js";
import { accServerPid, median, ms, procStatusKb } from "./stats.js";

/** The creates that made a size: their median wall time, their rate, their peak RSS. */
export interface CreateFigures {
  median: number;
  rate: number;
  seconds: number;
  peakKb: number;
}

export interface Figures {
  n: number;
  create?: CreateFigures;
  /** CLI wall time, acc server's CPU time for it, and the duration its event records. */
  start: number;
  startServerCpu: number;
  startEvent: number;
  stop: number;
  stopServerCpu: number;
  stopEvent: number;
  listThrough: number;
  listServerCpu: number;
  listDirect: number;
  listPeakKb: number;
  /** acc server's own pass (its report's duration_ms) and the CLI call around it. */
  serverPass: number;
  serverPassCli: number;
  /** monitorPass in this process: the store as it is, and with every instance running. */
  pass: number;
  passAllRunning: number;
  nginxTest: number;
  nginxReload: number;
  nginxMasterMb: number;
  nginxWorkerMb: number;
  load: number;
}

type Home = Pick<AccHome, "home" | "env">;

async function nginxRssMb(home: string): Promise<{ master: number; worker: number }> {
  const masterPid = Number((await readFile(path.join(home, "run/nginx.pid"), "utf8")).trim());
  // 0 for a worker gone meanwhile: the old generation's workers exit after a reload.
  const rss = async (pid: number): Promise<number> =>
    ((await procStatusKb(pid, "VmRSS")) || 0) / 1024;
  const workers = await childrenOf(masterPid);
  return {
    master: await rss(masterPid),
    worker: Math.max(0, ...(await Promise.all(workers.map(rss)))),
  };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** The same context with every instance's row seen as running: a pass then decides for all. */
function allRunning(ctx: AccContext): AccContext {
  const store = Object.create(ctx.store) as AccContext["store"];
  store.listInstanceActivity = async () =>
    (await ctx.store.listInstanceActivity()).map((i) => ({ ...i, state: "running" as const }));
  return { ...ctx, store };
}

function checkPass(report: MonitorReport, running: number): void {
  if (report.checked !== running || report.would_stop.length > 0 || report.errors.length > 0)
    throw new Error(`unexpected monitor report: ${JSON.stringify(report).slice(0, 500)}`);
}

/**
 * Everything but the creates, on a booted home of n instances (all stopped) whose acc server
 * runs: `name` is started and stopped `runs` times, and acc server is stopped for a while (the
 * direct list and the passes in this process) and started again.
 */
export async function measureAt(
  acc: Home,
  n: number,
  options: { name: string; runs: number; instancePorts: { min: number; max: number } },
): Promise<Omit<Figures, "create">> {
  const { name, runs } = options;
  const load = os.loadavg()[0] ?? NaN;
  const server = await accServerPid(acc.home);
  const withCpu = async (
    args: string[],
  ): Promise<{ ms: number; cpu: number; stdout: string; maxRssKb: number }> => {
    const before = cpuMs(server);
    const result = await runMeasured(acc.env, args, { rss: args[0] === "list" });
    return { ...result, cpu: cpuMs(server) - before };
  };

  const start = { wall: [] as number[], cpu: [] as number[] };
  const stop = { wall: [] as number[], cpu: [] as number[] };
  for (let i = 0; i < runs; i++) {
    const started = await withCpu(["start", name]);
    start.wall.push(started.ms);
    start.cpu.push(started.cpu);
    const stopped = await withCpu(["stop", name]);
    stop.wall.push(stopped.ms);
    stop.cpu.push(stopped.cpu);
  }

  const list = { wall: [] as number[], cpu: [] as number[], peakKb: 0 };
  for (let i = 0; i < runs; i++) {
    const result = await withCpu(["list", "--json"]);
    const count = (JSON.parse(result.stdout) as unknown[]).length;
    if (count !== n) throw new Error(`list shows ${count} instances, expected ${n}`);
    list.wall.push(result.ms);
    list.cpu.push(result.cpu);
    list.peakKb = Math.max(list.peakKb, result.maxRssKb);
  }

  const serverPass: number[] = [];
  const serverPassCli: number[] = [];
  for (let i = 0; i < runs; i++) {
    const result = await runMeasured(acc.env, ["monitor", "--dry-run", "--json"], {
      rss: false,
    });
    const report = JSON.parse(result.stdout) as MonitorReport;
    checkPass(report, 0);
    serverPass.push(report.duration_ms);
    serverPassCli.push(result.ms);
  }

  const ctx = await openContext({ home: acc.home, env: acc.env, accRoot: ACC_ROOT });
  const direct: number[] = [];
  const pass: number[] = [];
  const passAllRunning: number[] = [];
  const events = { start: [] as number[], stop: [] as number[] };
  try {
    ctx.progress = { step: () => undefined };
    // The CLI does the work itself when acc server is down.
    await ctx.processes.stopService("acc-server");
    for (let i = 0; i < runs; i++) {
      const result = await runMeasured(acc.env, ["list", "--json"], { rss: false });
      const count = (JSON.parse(result.stdout) as unknown[]).length;
      if (count !== n) throw new Error(`list shows ${count} instances, expected ${n}`);
      direct.push(result.ms);
    }
    for (const action of ["start", "stop"] as const) {
      const recorded = await ctx.store.listEvents({ instance: name, action, limit: runs });
      events[action] = recorded.map((e) => e.durationMs ?? NaN);
    }
    const running = allRunning(ctx);
    // The first of each reads the manifests, as a server's earlier passes have.
    checkPass(await monitorPass(ctx, { dryRun: true }), 0);
    checkPass(await monitorPass(running, { dryRun: true }), n);
    for (let i = 0; i < runs; i++) {
      pass.push(await timed(async () => checkPass(await monitorPass(ctx, { dryRun: true }), 0)));
      passAllRunning.push(
        await timed(async () => checkPass(await monitorPass(running, { dryRun: true }), n)),
      );
    }
  } finally {
    await ctx.processes.startService("acc-server");
    await ctx.store.close();
  }

  const nginx = createNginx({
    paths: homePaths(acc.home),
    exec,
    mutex: { run: (_key, fn) => fn() },
    config: {
      listenAddress: acc.env.ACC_LISTEN_ADDRESS ?? "127.0.0.1",
      httpPort: Number(acc.env.ACC_HTTP_PORT),
      adminHost: "acc.localhost",
      isRoot: process.getuid?.() === 0,
      nginxUser: "acc_nginx",
      instancePorts: options.instancePorts,
      requestTimeout: 300,
    },
  });
  const tests: number[] = [];
  const reloads: number[] = [];
  for (let i = 0; i < 3; i++) {
    tests.push(await timed(() => nginx.test()));
    reloads.push(await timed(() => nginx.reload()));
  }
  const memory = await nginxRssMb(acc.home);
  return {
    n,
    start: median(start.wall),
    startServerCpu: median(start.cpu),
    startEvent: median(events.start),
    stop: median(stop.wall),
    stopServerCpu: median(stop.cpu),
    stopEvent: median(events.stop),
    listThrough: median(list.wall),
    listServerCpu: median(list.cpu),
    listDirect: median(direct),
    listPeakKb: list.peakKb,
    serverPass: median(serverPass),
    serverPassCli: median(serverPassCli),
    pass: median(pass),
    passAllRunning: median(passAllRunning),
    nginxTest: median(tests),
    nginxReload: median(reloads),
    nginxMasterMb: memory.master,
    nginxWorkerMb: memory.worker,
    load,
  };
}

type Row = [
  label: string,
  value: (f: Figures) => number | undefined,
  format: (v: number) => string,
  perInstance?: "per-instance",
];

/**
 * A row per figure, a column per size; then the figure at the last size over the one at the
 * first ("flat" is 1×, linear is the sizes' own ratio), and per instance at the last size.
 */
export function printFigures(all: readonly Figures[]): void {
  const first = all[0];
  const last = all.at(-1);
  if (first === undefined || last === undefined) return;
  const mb = (v: number): string => `${v.toFixed(0)} MB`;
  const rows: Row[] = [
    ["create, per create (median)", (f) => f.create?.median, ms],
    ["create rate (/s)", (f) => f.create?.rate, (v) => v.toFixed(1)],
    ["creates of this step (s)", (f) => f.create?.seconds, (v) => v.toFixed(0)],
    ["acc start, one instance (CLI)", (f) => f.start, ms],
    ["  its event's duration (in acc server)", (f) => f.startEvent, ms],
    ["  acc server's CPU for it", (f) => f.startServerCpu, ms],
    ["acc stop, one instance (CLI)", (f) => f.stop, ms],
    ["  its event's duration (in acc server)", (f) => f.stopEvent, ms],
    ["  acc server's CPU for it", (f) => f.stopServerCpu, ms],
    ["acc list --json through acc server", (f) => f.listThrough, ms, "per-instance"],
    ["  acc server's CPU for it", (f) => f.listServerCpu, ms, "per-instance"],
    ["acc list --json direct (server down)", (f) => f.listDirect, ms, "per-instance"],
    ["monitor pass in acc server (duration_ms)", (f) => f.serverPass, ms, "per-instance"],
    ["  acc monitor --dry-run (CLI wall)", (f) => f.serverPassCli, ms],
    ["monitorPass here, all stopped", (f) => f.pass, ms, "per-instance"],
    ["monitorPass here, all seen running", (f) => f.passAllRunning, ms, "per-instance"],
    ["nginx -t", (f) => f.nginxTest, ms, "per-instance"],
    ["nginx reload settled", (f) => f.nginxReload, ms, "per-instance"],
    ["nginx RSS master", (f) => f.nginxMasterMb, mb],
    ["nginx RSS largest worker", (f) => f.nginxWorkerMb, mb],
    ["acc peak RSS: create", (f) => (f.create ? f.create.peakKb / 1024 : undefined), mb],
    ["acc peak RSS: list --json (CLI)", (f) => f.listPeakKb / 1024, mb],
    ["load average (1 min) when measured", (f) => f.load, (v) => v.toFixed(2)],
  ];
  const header = [
    "N",
    ...all.map((f) => String(f.n)),
    all.length > 1 ? `last/first (N ×${last.n / first.n})` : "",
    "per instance at last N",
  ];
  const table: string[][] = [header];
  for (const [label, value, format, perInstance] of rows) {
    const at = (f: Figures): string => {
      const v = value(f);
      return v === undefined || Number.isNaN(v) ? "-" : format(v);
    };
    const firstValue = value(first);
    const lastValue = value(last);
    table.push([
      label,
      ...all.map(at),
      all.length > 1 && firstValue !== undefined && lastValue !== undefined && firstValue > 0
        ? `${(lastValue / firstValue).toFixed(2)}×`
        : "",
      perInstance === "per-instance" && lastValue !== undefined
        ? `${((lastValue * 1000) / last.n).toFixed(1)} µs`
        : "",
    ]);
  }
  const widths = header.map((_, c) => Math.max(...table.map((row) => (row[c] ?? "").length)));
  console.log("");
  for (const row of table) {
    console.log(
      row
        .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
        .join("  "),
    );
  }
}
