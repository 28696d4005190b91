// bench/storm: N distinct stopped hello instances, each requested once, all at the same moment,
// through acc's nginx, with the start cap at its default (max_concurrent_starts = 4): every
// request must get its own app's page. Prints, per run: answers, total time, p50/p99 per
// request, the most starts seen at once (from the start events), then acc server's peak memory
// and the instances' total memory once all run.
// Run 1 wakes instances never started (each is first loaded into supervisord); later runs wake
// them again after `acc stop`.
// Usage: node dist/bench/storm.js [--n 200] [--runs 3] [--jobs 8] [--inherit-env]
import http from "node:http";
import path from "node:path";
import { openSqliteStore } from "../src/store/open.js";
import type { EventRecord } from "../src/store/store.js";
import { createAccHome, type AccHome } from "../test/harness/acc.js";
import {
  accServerPid,
  argFlag,
  argValue,
  counterDelta,
  dropNodeEnv,
  eachAtOnce,
  instancePids,
  mb,
  machineNote,
  median,
  ms,
  percentile,
  printTable,
  procStatusKb,
  tally,
  tcpCounters,
  timedGet,
  type TimedAnswer,
  widenInstancePorts,
} from "./stats.js";

const n = argValue("n", 200);
const runs = argValue("runs", 3);
const jobs = argValue("jobs", 8);
const inheritEnv = argFlag("inherit-env");
const names = Array.from({ length: n }, (_, i) => `storm${i + 1}`);

interface RunFigures {
  served: number;
  errors: string;
  total: number;
  p50: number;
  p99: number;
  starts: number;
  peakConcurrentStarts: number;
  startMedian: number;
  /** Medians of the first and the last quarter of the starts: does a start slow down as more run? */
  startFirstQuarter: number;
  startLastQuarter: number;
  listenOverflows: number;
}

/** Runs `acc ARGS` for every name, `jobs` at a time. */
async function forEach(acc: AccHome, args: (name: string) => string[]): Promise<void> {
  await eachAtOnce(names, jobs, async (name) => {
    await acc.ok(args(name));
  });
}

/** The most intervals [end - duration, end] that overlap at one moment. */
function peakOverlap(events: readonly EventRecord[]): number {
  const edges: [number, number][] = [];
  for (const e of events) {
    const end = Date.parse(e.time);
    edges.push([end - (e.durationMs ?? 0), 1], [end, -1]);
  }
  // At equal times an end comes before a start: the store's times are whole milliseconds.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let peak = 0;
  for (const [, step] of edges) {
    current += step;
    peak = Math.max(peak, current);
  }
  return peak;
}

const machine = machineNote();
const acc = await createAccHome();
if (!inheritEnv) dropNodeEnv(acc.env);
widenInstancePorts(acc.env, n);
const agent = new http.Agent({ keepAlive: false, maxSockets: n + 10 });
try {
  await acc.ok(["boot"]);
  const createStarted = performance.now();
  await forEach(acc, (name) => ["create", "hello", "--name", name, "--no-start"]);
  const createSeconds = (performance.now() - createStarted) / 1000;
  const serverPid = await accServerPid(acc.home);
  const store = openSqliteStore(path.join(acc.home, "state.db"));
  const figures: RunFigures[] = [];
  let instancesKb = NaN;
  let instanceCount = 0;
  try {
    for (let run = 0; run < runs; run++) {
      if (run > 0) await forEach(acc, (name) => ["stop", name]);
      const lastId = (await store.listEvents({ limit: 1 })).at(-1)?.id ?? 0;
      const tcpBefore = await tcpCounters();
      const started = performance.now();
      const answers = await Promise.all(
        names.map((name) =>
          timedGet(acc.httpPort, `${name}.localhost`, { agent, timeoutMs: 300_000 }).then(
            (answer): [string, TimedAnswer] => [name, answer],
          ),
        ),
      );
      const total = performance.now() - started;
      const tcpAfter = await tcpCounters();
      // Each answer must be its own instance's page, not a waiting or error page.
      const served = answers.filter(
        ([name, a]) => a.status === 200 && a.body.includes(`from ${name}</h1>`),
      );
      const bad = answers.filter(([name]) => !served.some(([s]) => s === name)).map(([, a]) => a);
      const starts = (await store.listEvents({ limit: 10 * n })).filter(
        (e) => e.id > lastId && e.action === "start",
      );
      figures.push({
        served: served.length,
        errors: bad.length === 0 ? "none" : tally(bad),
        total,
        p50: percentile(
          answers.map(([, a]) => a.ms),
          50,
        ),
        p99: percentile(
          answers.map(([, a]) => a.ms),
          99,
        ),
        starts: starts.filter((e) => e.outcome === "ok").length,
        peakConcurrentStarts: peakOverlap(starts),
        startMedian: median(starts.map((e) => e.durationMs ?? NaN)),
        startFirstQuarter: median(
          starts.slice(0, Math.ceil(starts.length / 4)).map((e) => e.durationMs ?? NaN),
        ),
        startLastQuarter: median(
          starts.slice(-Math.ceil(starts.length / 4)).map((e) => e.durationMs ?? NaN),
        ),
        listenOverflows: counterDelta(tcpBefore, tcpAfter, "ListenOverflows"),
      });
      if (run === 0) {
        const pids = await instancePids(acc.home);
        instanceCount = pids.length;
        instancesKb = 0;
        for (const pid of pids) instancesKb += (await procStatusKb(pid, "VmRSS")) || 0;
      }
    }
  } finally {
    await store.close();
  }
  const serverHwmKb = await procStatusKb(serverPid, "VmHWM");

  console.log(
    `bench/storm: ${n} stopped hello instances, one GET / each, all at once through nginx, ` +
      `max_concurrent_starts 4 (default), ${runs} runs; created in ${createSeconds.toFixed(0)} s ` +
      `(acc create --no-start, ${jobs} at a time)`,
  );
  console.log(`machine: ${machine}`);
  printTable(
    figures.map((f, i): [string, string] => [
      `run ${i + 1}${i === 0 ? " (never started)" : " (after acc stop)"}`,
      `served ${f.served}/${n}, errors: ${f.errors}, total ${ms(f.total)}, ` +
        `p50 ${ms(f.p50)}, p99 ${ms(f.p99)}, starts ${f.starts} ok, ` +
        `at once at most ${f.peakConcurrentStarts}, start median ${ms(f.startMedian)} ` +
        `(first quarter ${ms(f.startFirstQuarter)}, last ${ms(f.startLastQuarter)}), ` +
        `listen overflows ${f.listenOverflows}`,
    ]),
  );
  printTable([
    ["all served (every run)", figures.every((f) => f.served === n) ? "yes" : "NO"],
    ["total time (median of runs)", ms(median(figures.map((f) => f.total)))],
    [
      "per request p50 / p99 (median of runs)",
      `${ms(median(figures.map((f) => f.p50)))} / ${ms(median(figures.map((f) => f.p99)))}`,
    ],
    [
      "starts at once, at most (cap 4)",
      String(Math.max(...figures.map((f) => f.peakConcurrentStarts))),
    ],
    ["acc server peak RSS (VmHWM)", mb(serverHwmKb)],
    [
      "instances' RSS after run 1",
      `${mb(instancesKb)} total, ${instanceCount} processes, ${mb(instancesKb / Math.max(1, instanceCount))} each`,
    ],
  ]);
} finally {
  agent.destroy();
  process.stderr.write("cleaning up (stopping and removing the instances)...\n");
  await acc.cleanup();
}
