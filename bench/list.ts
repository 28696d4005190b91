// bench/list: `acc list --json` with N instances in the store (N=10000 by default), through
// acc server (its local socket) and direct (acc server down: the CLI opens the store itself),
// against a bare `node -e 0` in the same run. Medians of --runs runs (7), taken in turns so a
// load that comes and goes on the machine falls on all of them; issue 9's target is through
// the server ≤ 1.5× node -e 0. The rows are written straight into the store (bench/scale
// measures creates), and `acc server` is run by hand on the home (see bench/list-home.ts).
// --compare DIR: another build of acc (DIR/dist/acc.mjs, e.g. a checkout of main after `npm
// run build`) on a home of its own with the same rows, measured in the same turns.
// Usage: node dist/bench/list.js [--n 10000] [--runs 7] [--compare DIR] [--prefix l]
import path from "node:path";
import { ACC_BIN, createAccHome, type AccHome } from "../test/harness/acc.js";
import { seedInstances, startAccServer, unseedInstances, type RunningServer } from "./list-home.js";
import { cpuMs, runMeasured, runNode } from "./run-measured.js";
import { argString, argValue, median, ms, printTable } from "./stats.js";

const n = argValue("n", 10_000);
const runs = argValue("runs", 7);
const compare = argString("compare", "");
const prefix = argString("prefix", "l");

interface Version {
  label: string;
  bin: string;
  acc: AccHome;
  server?: RunningServer;
  through: number[];
  direct: number[];
  /** CPU of the CLI's process, and of acc server for its answer. */
  throughCpu: number[];
  serverCpu: number[];
  directCpu: number[];
  rssThroughKb: number;
  rssDirectKb: number;
  bytes: number;
}

const versions: Version[] = [];
const floor: number[] = [];
const floorCpu: number[] = [];

async function listOnce(
  version: Version,
  rss = false,
): Promise<{ ms: number; kb: number; cpu: number; serverCpu: number }> {
  const server = version.server?.pid;
  const [cpu, serverCpu] = [cpuMs("self", true), server ? cpuMs(server) : 0];
  const result = await runMeasured(version.acc.env, ["list", "--json"], {
    bin: version.bin,
    rss,
  });
  return {
    ms: result.ms,
    kb: result.maxRssKb,
    cpu: cpuMs("self", true) - cpu,
    serverCpu: server ? cpuMs(server) - serverCpu : 0,
  };
}

async function floorOnce(): Promise<void> {
  const cpu = cpuMs("self", true);
  floor.push((await runNode(process.env, ["-e", "0"])).ms);
  floorCpu.push(cpuMs("self", true) - cpu);
}

/** One run of each, checked once: every instance is there. */
async function check(version: Version): Promise<void> {
  const result = await runMeasured(version.acc.env, ["list", "--json"], { bin: version.bin });
  const count = (JSON.parse(result.stdout) as unknown[]).length;
  if (count !== n) throw new Error(`${version.label}: list shows ${count} instances, not ${n}`);
  version.bytes = Buffer.byteLength(result.stdout);
}

try {
  for (const [label, bin] of [
    ["this build", ACC_BIN],
    ...(compare ? [[`${compare}`, path.resolve(compare, "dist/acc.mjs")]] : []),
  ] as const) {
    const acc = await createAccHome();
    const version: Version = {
      label,
      bin,
      acc,
      through: [],
      direct: [],
      throughCpu: [],
      serverCpu: [],
      directCpu: [],
      rssThroughKb: NaN,
      rssDirectKb: NaN,
      bytes: 0,
    };
    versions.push(version);
    await seedInstances(acc.home, n, prefix);
  }

  for (const version of versions) {
    version.server = await startAccServer(version.acc, version.bin);
    await check(version);
  }
  for (let i = 0; i < runs; i++) {
    await floorOnce();
    for (const version of versions) {
      const run = await listOnce(version);
      version.through.push(run.ms);
      version.throughCpu.push(run.cpu);
      version.serverCpu.push(run.serverCpu);
    }
  }
  for (const version of versions) {
    version.rssThroughKb = (await listOnce(version, true)).kb;
    await version.server?.stop();
    version.server = undefined;
    await check(version);
  }
  for (let i = 0; i < runs; i++) {
    await floorOnce();
    for (const version of versions) {
      const run = await listOnce(version);
      version.direct.push(run.ms);
      version.directCpu.push(run.cpu);
    }
  }
  for (const version of versions) version.rssDirectKb = (await listOnce(version, true)).kb;

  const base = median(floor);
  const baseCpu = median(floorCpu);
  const ratio = (values: number[]): string =>
    `${ms(median(values))}  ${(median(values) / base).toFixed(2)}× node -e 0`;
  const cpuRatio = (values: number[]): string =>
    `${ms(median(values))}  ${(median(values) / baseCpu).toFixed(2)}× node -e 0's`;
  console.log(
    `bench/list: ${n} instances in the store (rows written directly), medians of ${runs} runs taken in turns; wall time, and CPU time (user + system, 10 ms steps)`,
  );
  const rows: [string, string][] = [
    [`node -e 0 (${floor.length} runs)`, ms(base)],
    ["node -e 0 CPU", ms(baseCpu)],
  ];
  for (const version of versions) {
    const tag = versions.length > 1 ? ` [${version.label}]` : "";
    const throughCpu = version.throughCpu.map((cpu, i) => cpu + (version.serverCpu[i] ?? 0));
    rows.push(
      [`acc list --json through acc server${tag}`, `${ratio(version.through)} (target ≤ 1.5×)`],
      [
        `  CPU: the CLI + acc server${tag}`,
        `${cpuRatio(throughCpu)} (CLI ${ms(median(version.throughCpu))}, server ${ms(median(version.serverCpu))})`,
      ],
      [`acc list --json direct, server down${tag}`, ratio(version.direct)],
      [`  CPU: the CLI${tag}`, cpuRatio(version.directCpu)],
      [
        `peak RSS through / direct${tag}`,
        `${(version.rssThroughKb / 1024).toFixed(0)} MB / ${(version.rssDirectKb / 1024).toFixed(0)} MB`,
      ],
      [`JSON printed${tag}`, `${(version.bytes / 1024 ** 2).toFixed(2)} MB`],
    );
  }
  printTable(rows);
} finally {
  for (const version of versions) {
    await version.server?.stop();
    unseedInstances(version.acc.home);
    await version.acc.cleanup();
  }
}
