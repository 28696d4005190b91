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
import { runMeasured, runNode } from "./run-measured.js";
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
  rssThroughKb: number;
  rssDirectKb: number;
  bytes: number;
}

const versions: Version[] = [];
const floor: number[] = [];

async function listOnce(version: Version, rss = false): Promise<{ ms: number; kb: number }> {
  const result = await runMeasured(version.acc.env, ["list", "--json"], {
    bin: version.bin,
    rss,
  });
  return { ms: result.ms, kb: result.maxRssKb };
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
    floor.push((await runNode(process.env, ["-e", "0"])).ms);
    for (const version of versions) version.through.push((await listOnce(version)).ms);
  }
  for (const version of versions) {
    version.rssThroughKb = (await listOnce(version, true)).kb;
    await version.server?.stop();
    version.server = undefined;
    await check(version);
  }
  for (let i = 0; i < runs; i++) {
    floor.push((await runNode(process.env, ["-e", "0"])).ms);
    for (const version of versions) version.direct.push((await listOnce(version)).ms);
  }
  for (const version of versions) version.rssDirectKb = (await listOnce(version, true)).kb;

  const base = median(floor);
  const ratio = (values: number[]): string =>
    `${ms(median(values))}  ${(median(values) / base).toFixed(2)}× node -e 0`;
  console.log(
    `bench/list: ${n} instances in the store (rows written directly), medians of ${runs} runs taken in turns`,
  );
  const rows: [string, string][] = [[`node -e 0 (${floor.length} runs)`, ms(base)]];
  for (const version of versions) {
    const tag = versions.length > 1 ? ` [${version.label}]` : "";
    rows.push(
      [`acc list --json through acc server${tag}`, `${ratio(version.through)} (target ≤ 1.5×)`],
      [`acc list --json direct, server down${tag}`, ratio(version.direct)],
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
