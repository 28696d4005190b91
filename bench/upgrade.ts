// bench/upgrade: a rollout of a new model version over N stopped hello instances (issue 12).
// The instances are created with --no-start (jobs at a time), then a new version of hello is
// put in HOME/models/hello (the bundled folder with its version bumped and an [upgrade] table
// whose command is `true`, so the command step is run and measured), and
// `acc upgrade --model hello --batch B --json` runs. Twice: first with verification (each
// instance started and stopped on its new version, the default), then with --no-verify, on a
// third version made the same way (the same instances, upgraded again: each then has one more
// backup and an upgrade journal from the first run). Per run: total time, per-instance median
// and p90, instances/s, each step's share of the summed per-instance durations (and its median),
// the counts (every instance must be upgraded), and whether every instance is still stopped
// afterwards (acc list --json, and no instance process left). Figures are medians over the
// instances of one run. SIGINT or SIGTERM: the acc command under way is killed, the home cleaned.
// Usage: node dist/bench/upgrade.js [--n 100] [--batch 4] [--jobs 8] [--prefix upg]
//   [--inherit-env]
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { UpgradeItem, UpgradeReport } from "../src/services/upgrades.js";
import { ACC_ROOT, createAccHome } from "../test/harness/acc.js";
import { NO_DATABASE } from "../test/harness/api.js";
import {
  argFlag,
  argString,
  argValue,
  dropNodeEnv,
  eachAtOnce,
  instancePids,
  machineNote,
  median,
  ms,
  percentile,
  printTable,
  widenInstancePorts,
} from "./stats.js";

const n = argValue("n", 100);
const batch = argValue("batch", 4);
const jobs = argValue("jobs", 8);
const prefix = argString("prefix", "upg");
const inheritEnv = argFlag("inherit-env");
const names = Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
type Step = keyof NonNullable<UpgradeItem["steps"]>;
const STEPS: readonly Step[] = [
  "code",
  "stop",
  "backup",
  "render",
  "command",
  "verify",
  "rollback",
];
/** Always shown, 0 or not: the steps every upgrade of a stopped instance goes through. */
const MAIN_STEPS: ReadonlySet<Step> = new Set(["backup", "render", "command", "verify"]);

let stopping = false;
const abort = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (!stopping) process.stderr.write(`${signal}: stopping, then cleaning up\n`);
    stopping = true;
    abort.abort();
  });
}
function checkStopping(): void {
  if (stopping) throw new Error("interrupted");
}

const machine = machineNote();
const acc = await createAccHome({ env: NO_DATABASE });
if (!inheritEnv) dropNodeEnv(acc.env);
widenInstancePorts(acc.env, n);

/** HOME/models/hello: the bundled hello at `version`, with an [upgrade] step that does nothing. */
async function publishHello(version: string): Promise<void> {
  const dir = path.join(acc.home, "models", "hello");
  await mkdir(path.dirname(dir), { recursive: true });
  await cp(path.join(ACC_ROOT, "models", "hello"), dir, { recursive: true });
  const manifest = await readFile(path.join(dir, "model.toml"), "utf8");
  const bumped = manifest.replace(/^version = ".*"$/m, `version = "${version}"`);
  if (bumped === manifest) throw new Error("no version line in models/hello/model.toml");
  await writeFile(path.join(dir, "model.toml"), `${bumped}\n[upgrade]\ncommand = "true"\n`);
}

interface RunFigures {
  label: string;
  to: string;
  wallMs: number;
  report: UpgradeReport;
  stoppedAfter: number;
  onVersionAfter: number;
  notStopped: string[];
  processesAfter: number;
}

async function upgradeRun(label: string, to: string, extra: string[]): Promise<RunFigures> {
  await publishHello(to);
  const args = ["upgrade", "--model", "hello", "--batch", String(batch), ...extra, "--json"];
  process.stderr.write(`${new Date().toISOString()} acc ${args.join(" ")}\n`);
  const started = performance.now();
  const result = await acc.run(args, { timeoutMs: 3_600_000, signal: abort.signal });
  const wallMs = performance.now() - started;
  checkStopping();
  let report: UpgradeReport;
  try {
    report = JSON.parse(result.stdout) as UpgradeReport;
  } catch {
    throw new Error(`acc ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  }
  const listed = JSON.parse(await acc.ok(["list", "--json"])) as {
    name: string;
    state: string;
    model_version: string;
  }[];
  const ours = listed.filter((i) => names.includes(i.name));
  return {
    label,
    to,
    wallMs,
    report,
    stoppedAfter: ours.filter((i) => i.state === "stopped").length,
    onVersionAfter: ours.filter((i) => i.model_version === to).length,
    notStopped: ours.filter((i) => i.state !== "stopped").map((i) => `${i.name} ${i.state}`),
    processesAfter: (await instancePids(acc.home)).length,
  };
}

function seconds(value: number): string {
  return `${(value / 1000).toFixed(1)} s`;
}

/** What is wrong with a run: not every instance upgraded, or not every one stopped after it. */
function problems(f: RunFigures): string[] {
  const found: string[] = [];
  const c = f.report.counts;
  if (c.upgraded !== n || f.report.results.length !== n)
    found.push(`${c.upgraded}/${n} upgraded (${f.report.results.length} results)`);
  if (f.report.stopped !== null) found.push(`the rollout stopped: ${f.report.stopped}`);
  for (const item of f.report.results.filter((i) => i.outcome !== "upgraded").slice(0, 5))
    found.push(
      `${item.name}: ${item.outcome}${item.reason !== undefined ? `: ${item.reason}` : ""}`,
    );
  if (f.stoppedAfter !== n)
    found.push(`${f.stoppedAfter}/${n} stopped after it: ${f.notStopped.slice(0, 5).join(", ")}`);
  if (f.onVersionAfter !== n) found.push(`${f.onVersionAfter}/${n} on ${f.to} after it`);
  if (f.processesAfter !== 0) found.push(`${f.processesAfter} instance processes left running`);
  return found;
}

function printRun(f: RunFigures): void {
  const items = f.report.results.filter((i) => i.outcome === "upgraded");
  const durations = items.map((i) => i.duration_ms ?? NaN);
  const summed = durations.reduce((a, b) => a + b, 0);
  const c = f.report.counts;
  console.log(`${f.label}: hello -> ${f.to}, --batch ${batch}`);
  const rows: [string, string][] = [
    [
      "  counts",
      `upgraded ${c.upgraded}, rolled back ${c.rolled_back}, failed ${c.failed}, ` +
        `skipped ${c.skipped}, not started ${c.not_started}` +
        (f.report.stopped !== null ? `; stopped: ${f.report.stopped}` : ""),
    ],
    [
      "  total time",
      `${seconds(f.report.duration_ms)} (acc's duration_ms), ${seconds(f.wallMs)} (the CLI's wall time)`,
    ],
    [
      "  per instance",
      `median ${ms(median(durations))}, p90 ${ms(percentile(durations, 90))}, ` +
        `max ${ms(Math.max(...durations))}`,
    ],
    ["  rate", `${(items.length / (f.report.duration_ms / 1000)).toFixed(2)} instances/s`],
  ];
  let accounted = 0;
  for (const step of STEPS) {
    const each = items.map((i) => i.steps?.[step] ?? 0);
    const total = each.reduce((a, b) => a + b, 0);
    accounted += total;
    if (total === 0 && !MAIN_STEPS.has(step)) continue;
    const ran = items.filter((i) => i.steps?.[step] !== undefined).length;
    rows.push([
      `  step ${step}`,
      ran === 0
        ? "not run"
        : `${((100 * total) / summed).toFixed(1)} %, median ${ms(median(each))}, ` +
          `max ${ms(Math.max(...each))}` +
          (ran !== items.length ? ` (run for ${ran} of ${items.length})` : ""),
    ]);
  }
  rows.push([
    "  rest (lease, plan, journal, events)",
    `${((100 * (summed - accounted)) / summed).toFixed(1)} %, ` +
      `median ${ms(median(items.map((i) => (i.duration_ms ?? 0) - sumSteps(i))))}`,
  ]);
  rows.push([
    "  after it",
    `${f.stoppedAfter}/${n} stopped (acc list), ${f.onVersionAfter}/${n} on ${f.to}, ` +
      `${f.processesAfter} instance processes running`,
  ]);
  printTable(rows);
}

function sumSteps(item: UpgradeItem): number {
  return Object.values(item.steps ?? {}).reduce((a, b) => a + b, 0);
}

let failed = false;
try {
  await acc.ok(["boot"]);
  const createStarted = performance.now();
  await eachAtOnce(
    names,
    jobs,
    async (name) => {
      await acc.ok(["create", "hello", "--name", name, "--no-start"]);
    },
    () => stopping,
  );
  checkStopping();
  const createMs = performance.now() - createStarted;
  console.log(
    `bench/upgrade: ${n} stopped hello instances (created in ${seconds(createMs)}, ` +
      `${jobs} at a time), acc upgrade --model hello --batch ${batch}, [upgrade] command = "true"`,
  );
  console.log(`machine: ${machine}`);
  const runs: RunFigures[] = [];
  for (const [label, to, extra] of [
    ["run 1, verified (default)", "1.1.0", []],
    ["run 2, --no-verify (the same instances, again)", "1.2.0", ["--no-verify"]],
  ] as const) {
    const figures = await upgradeRun(label, to, [...extra]);
    runs.push(figures);
    printRun(figures);
    const found = problems(figures);
    if (found.length > 0) {
      failed = true;
      console.log(`  FAILED: ${found.join("; ")}`);
    }
  }
  const [verified, unverified] = runs;
  if (verified !== undefined && unverified !== undefined) {
    const medianOf = (f: RunFigures): number =>
      median(f.report.results.map((i) => i.duration_ms ?? NaN));
    printTable([
      [
        "verification's cost per instance (median of run 1 - median of run 2)",
        ms(medianOf(verified) - medianOf(unverified)),
      ],
      ["all upgraded and all stopped after each run", failed ? "NO (see FAILED above)" : "yes"],
    ]);
  }
} catch (error) {
  failed = true;
  throw error;
} finally {
  process.stderr.write(`cleaning up (destroying ${prefix}* users, removing the home)...\n`);
  await acc.cleanup();
  if (failed) process.exitCode = 1;
}
