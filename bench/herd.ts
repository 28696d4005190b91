// bench/herd: N requests at once to one stopped hello instance, through acc's nginx. The waker
// must start it once (single flight) and answer every held request with the app's own answer.
// Prints: starts (from the events), errors, latency p50/p99, time to the last answer, and the
// memory of acc server, per run, then the median of the runs.
// Usage: node dist/bench/herd.js [--n 1000] [--runs 3] [--path /healthz] [--inherit-env]
// The default path is /healthz: hello's / writes and fsyncs a counter file per visit, one
// after another, so with / the herd would time the app's disk, not the wake.
import http from "node:http";
import path from "node:path";
import { homePaths } from "../src/core/paths.js";
import { errorLogPath } from "../src/drivers/nginx/render.js";
import { openSqliteStore } from "../src/store/open.js";
import { createAccHome } from "../test/harness/acc.js";
import {
  accServerPid,
  argFlag,
  argString,
  argValue,
  counterDelta,
  dropNodeEnv,
  mb,
  machineNote,
  median,
  nginxLogSummary,
  ms,
  percentile,
  printTable,
  procStatusKb,
  tally,
  tcpCounters,
  timedGet,
  type TimedAnswer,
} from "./stats.js";

const n = argValue("n", 1000);
const runs = argValue("runs", 3);
const requestPath = argString("path", "/healthz");
const inheritEnv = argFlag("inherit-env");
const name = "herd";
const host = `${name}.localhost`;

interface RunFigures {
  starts: number;
  startsFailed: number;
  ok: number;
  errors: string;
  p50: number;
  p99: number;
  lastAnswer: number;
  /** When the start event was recorded (instance healthy), after the first request was sent. */
  healthyAt: number;
  listenOverflows: number;
  synRetransmits: number;
  serverHwmKb: number;
}

/** The app's own answer for the path, not a page from acc or nginx. */
function fromApp(answer: TimedAnswer): boolean {
  if (answer.status !== 200) return false;
  return requestPath === "/healthz" ? answer.body === "ok" : answer.body.includes(`from ${name}`);
}

const machine = machineNote();
const acc = await createAccHome();
if (!inheritEnv) dropNodeEnv(acc.env);
// Room for every request's socket; nothing system-wide is raised.
const agent = new http.Agent({ keepAlive: false, maxSockets: n + 10 });
try {
  await acc.ok(["boot"]);
  await acc.ok(["create", "hello", "--name", name]);
  const serverPid = await accServerPid(acc.home);
  const serverRssBefore = await procStatusKb(serverPid, "VmRSS");
  const store = openSqliteStore(path.join(acc.home, "state.db"));
  const figures: RunFigures[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      await acc.ok(["stop", name]);
      const before = await store.listEvents({ instance: name, limit: 1 });
      const lastId = before.at(-1)?.id ?? 0;
      const tcpBefore = await tcpCounters();
      const wallStart = Date.now();
      const started = performance.now();
      const answers = await Promise.all(
        Array.from({ length: n }, () =>
          timedGet(acc.httpPort, host, { path: requestPath, agent, timeoutMs: 120_000 }),
        ),
      );
      const lastAnswer = performance.now() - started;
      const tcpAfter = await tcpCounters();
      const events = (await store.listEvents({ instance: name, limit: 10_000 })).filter(
        (e) => e.id > lastId && e.action === "start",
      );
      const good = answers.filter(fromApp);
      const bad = answers.filter((a) => !fromApp(a));
      figures.push({
        starts: events.filter((e) => e.cause === "wake").length,
        startsFailed: events.filter((e) => e.outcome !== "ok").length,
        ok: good.length,
        errors: bad.length === 0 ? "none" : tally(bad),
        p50: percentile(
          answers.map((a) => a.ms),
          50,
        ),
        p99: percentile(
          answers.map((a) => a.ms),
          99,
        ),
        lastAnswer,
        healthyAt: Math.max(...events.map((e) => Date.parse(e.time) - wallStart)),
        listenOverflows: counterDelta(tcpBefore, tcpAfter, "ListenOverflows"),
        synRetransmits: counterDelta(tcpBefore, tcpAfter, "TCPSynRetrans"),
        serverHwmKb: await procStatusKb(serverPid, "VmHWM"),
      });
      if (events.length !== events.filter((e) => e.cause === "wake").length)
        throw new Error(`a start other than the wake ran: ${JSON.stringify(events)}`);
    }
  } finally {
    await store.close();
  }

  console.log(
    `bench/herd: ${n} concurrent GET ${requestPath} to one stopped hello instance through nginx, ${runs} runs` +
      (requestPath === "/healthz"
        ? " (/healthz: a cheap path, so the app is not the bottleneck)"
        : ""),
  );
  console.log(`machine: ${machine}`);
  printTable(
    figures.map((f, i): [string, string] => [
      `run ${i + 1}`,
      `starts ${f.starts}${f.startsFailed > 0 ? ` (${f.startsFailed} failed)` : ""}, ` +
        `200 from the app ${f.ok}/${n}, errors: ${f.errors}, ` +
        `p50 ${ms(f.p50)}, p99 ${ms(f.p99)}, last answer ${ms(f.lastAnswer)}, ` +
        `healthy at ${ms(f.healthyAt)}, listen overflows ${f.listenOverflows}, SYN retransmits ${f.synRetransmits}`,
    ]),
  );
  const errors = figures.reduce((sum, f) => sum + (n - f.ok), 0);
  printTable([
    [
      "starts per herd (must be 1)",
      figures.every((f) => f.starts === 1)
        ? "1 in every run"
        : figures.map((f) => f.starts).join(", "),
    ],
    ["errors, all runs (must be 0)", String(errors)],
    ["latency p50 (median of runs)", ms(median(figures.map((f) => f.p50)))],
    ["latency p99 (median of runs)", ms(median(figures.map((f) => f.p99)))],
    ["last answer (median of runs)", ms(median(figures.map((f) => f.lastAnswer)))],
    [
      "instance healthy (start event) at (median)",
      `${ms(median(figures.map((f) => f.healthyAt)))} after the first request was sent`,
    ],
    [
      "listen-queue overflows / SYN retransmits",
      `${figures.map((f) => `${f.listenOverflows}/${f.synRetransmits}`).join(", ")} ` +
        "(machine-wide TcpExt counters; a dropped SYN is retried after 1 s)",
    ],
    [
      "acc server RSS before / peak (VmHWM)",
      `${mb(serverRssBefore)} / ${mb(Math.max(...figures.map((f) => f.serverHwmKb)))}`,
    ],
  ]);
  if (errors > 0) {
    console.log("nginx's error log, most frequent messages:");
    for (const line of await nginxLogSummary(errorLogPath(homePaths(acc.home))))
      console.log(`  ${line}`);
  }
} finally {
  agent.destroy();
  await acc.cleanup();
}
