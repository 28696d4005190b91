// bench/proxy: requests per second and median latency (wrk) through acc's nginx to a running
// hello instance, against a hand-tuned nginx (upstream block, keepalive 32, HTTP/1.1 to the
// app, buffered access log) proxying to the same app port, in the same run; first with one
// instance, then with 10,000 instances in acc's nginx routing (the other 9,999 are routing
// entries only: their nginx files, written straight into HOME/nginx, no store row, no process).
// The one instance has the first port of the range, as the first instance gets; at 10,000 its
// port is the last of the range (nginx.conf rewritten for a range that ends at it), the worst
// place for nginx's `hash`, which walks its upstream's server list up to the chosen one.
// Both nginx run `worker_processes auto`, log every request to a buffered access log, keep
// upstream connections alive over HTTP/1.1, and proxy to the same app port. What differs is
// acc's routing and its headers (X-Real-IP, X-Forwarded-*, and the two it empties), its longer
// timeouts and error pages (no cost per answered request), worker_connections 16384 vs 4096
// and a listen backlog of 4096 (none at 32 connections).
// Both proxies get GET /healthz: hello's / writes and fsyncs a counter file per visit, which
// would make the app the bottleneck and hide the proxies' difference.
// Usage: node dist/bench/proxy.js [--runs 3] [--duration 10] [--connections 32] [--threads 2]
//        [--instances 10000]
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { homePaths } from "../src/core/paths.js";
import { readMasterPid } from "../src/drivers/nginx/control.js";
import { createNginx } from "../src/drivers/nginx/index.js";
import { UPSTREAM_GROUP_SIZE, renderSite, sitePath } from "../src/drivers/nginx/render.js";
import { exec } from "../src/lib/exec.js";
import { portAnswers } from "../src/services/health.js";
import { createAccHome } from "../test/harness/acc.js";
import { freePort, isAlive, makeTempDir, removeDir, waitFor } from "../test/harness/common.js";
import {
  argFlag,
  argValue,
  dropNodeEnv,
  machineNote,
  median,
  ms,
  printTable,
  timedGet,
} from "./stats.js";
import { workersTicks } from "./nginx-bench.js";

const runs = argValue("runs", 3);
const duration = argValue("duration", 10);
const connections = argValue("connections", 32);
const threads = argValue("threads", 2);
const instances = argValue("instances", 10_000);
const NGINX_BIN = "/usr/sbin/nginx";
const WRK_BIN = "/usr/bin/wrk";
const REQUEST_PATH = "/healthz";
const name = "proxy";
const host = `${name}.localhost`;

interface WrkResult {
  rps: number;
  p50Ms: number;
  /** CPU time of nginx's workers per request, in microseconds: steadier than rps on a busy machine. */
  cpuUs: number;
  /** Non-2xx answers and socket errors: a result with any is not a proxy's throughput. */
  problems: string;
}

function wrkTime(value: string, unit: string): number {
  const scale: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
  return Number(value) * (scale[unit] ?? NaN);
}

async function runWrk(port: number, master: number): Promise<WrkResult> {
  const before = await workersTicks(master);
  const result = await wrk(port);
  const ticks = (await workersTicks(master)) - before;
  return { ...result, cpuUs: (ticks * 1e6) / ticksPerSecond / result.requests };
}

function wrk(port: number): Promise<Omit<WrkResult, "cpuUs"> & { requests: number }> {
  const args = [
    `-t${threads}`,
    `-c${connections}`,
    `-d${duration}s`,
    "--latency",
    "-H",
    `Host: ${host}`,
    `http://127.0.0.1:${port}${REQUEST_PATH}`,
  ];
  return new Promise((resolve, reject) => {
    execFile(
      WRK_BIN,
      args,
      { encoding: "utf8", timeout: (duration + 30) * 1000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`wrk ${args.join(" ")}: ${error.message} ${stderr}`));
        const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
        const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(stdout);
        const requests = /(\d+) requests in/.exec(stdout);
        if (!rps?.[1] || !p50?.[1] || !p50[2] || !requests?.[1])
          return reject(new Error(`cannot read wrk's output:\n${stdout}`));
        const problems = [
          /Non-2xx or 3xx responses: \d+/.exec(stdout)?.[0],
          /Socket errors: .*/.exec(stdout)?.[0],
        ].filter((p): p is string => p !== undefined);
        resolve({
          rps: Number(rps[1]),
          requests: Number(requests[1]),
          p50Ms: wrkTime(p50[1], p50[2]),
          problems: problems.join("; "),
        });
      },
    );
  });
}

/** An nginx as one would tune it by hand for a single app: kept-alive upstream connections. */
function handTunedConf(dir: string, listenPort: number, appPort: number, userLine: string): string {
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((t) => `    ${t}_temp_path ${dir}/temp/${t};`)
    .join("\n");
  return `worker_processes auto;
${userLine}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {
    worker_connections 4096;
}
http {
${temp}
    access_log ${dir}/access.log combined buffer=64k flush=1s;
    upstream app {
        server 127.0.0.1:${appPort};
        keepalive 32;
    }
    server {
        listen 127.0.0.1:${listenPort};
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }
    }
}
`;
}

async function startHandTuned(
  dir: string,
  appPort: number,
  userLine: string,
): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  for (const t of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"])
    await mkdir(path.join(dir, "temp", t), { recursive: true });
  const conf = path.join(dir, "nginx.conf");
  await writeFile(conf, handTunedConf(dir, port, appPort, userLine));
  const child = spawn(
    NGINX_BIN,
    ["-p", `${dir}/`, "-c", conf, "-e", path.join(dir, "error.log"), "-g", "daemon off;"],
    { stdio: "ignore" },
  );
  await waitFor(
    "the hand-tuned nginx to listen",
    async () => {
      if (child.exitCode !== null)
        throw new Error(`nginx exited: ${await readFile(path.join(dir, "error.log"), "utf8")}`);
      return (await portAnswers(port)) ? true : undefined;
    },
    10_000,
  );
  return { port, child };
}

async function stopChild(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(pid, "SIGQUIT");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  if (isAlive(pid)) {
    process.kill(pid, "SIGKILL");
    await exited;
  }
}

/** `runs` wrk runs against each proxy, alternating which goes first. */
async function compare(
  accPort: number,
  handPort: number,
): Promise<{ acc: WrkResult[]; hand: WrkResult[] }> {
  const acc: WrkResult[] = [];
  const hand: WrkResult[] = [];
  const accMaster = await readMasterPid(paths.nginxPid, paths.nginxConf);
  const handMaster = handNginx?.child.pid;
  if (accMaster === undefined || handMaster === undefined) throw new Error("no nginx master");
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      acc.push(await runWrk(accPort, accMaster));
      hand.push(await runWrk(handPort, handMaster));
    } else {
      hand.push(await runWrk(handPort, handMaster));
      acc.push(await runWrk(accPort, accMaster));
    }
  }
  return { acc, hand };
}

async function checkAnswer(port: number, what: string): Promise<void> {
  const answer = await timedGet(port, host, { path: REQUEST_PATH, timeoutMs: 10_000 });
  if (answer.status !== 200 || answer.body !== "ok")
    throw new Error(
      `${what} answered ${answer.status} ${answer.error ?? answer.body.slice(0, 200)}`,
    );
}

function rows(label: string, result: { acc: WrkResult[]; hand: WrkResult[] }): [string, string][] {
  const accRps = median(result.acc.map((r) => r.rps));
  const handRps = median(result.hand.map((r) => r.rps));
  const list = (rs: WrkResult[]): string => rs.map((r) => r.rps.toFixed(0)).join(", ");
  const accCpu = median(result.acc.map((r) => r.cpuUs));
  const handCpu = median(result.hand.map((r) => r.cpuUs));
  // Per round, acc's run and the hand-tuned one's are back to back: their ratio is steadier.
  const paired = median(result.acc.map((r, i) => r.rps / (result.hand[i]?.rps ?? NaN)));
  const problems = [...result.acc, ...result.hand].map((r) => r.problems).filter(Boolean);
  return [
    [
      `${label}: acc's nginx`,
      `${accRps.toFixed(0)} req/s (${list(result.acc)}), p50 ${ms(median(result.acc.map((r) => r.p50Ms)))}, workers' CPU ${accCpu.toFixed(1)} us/request`,
    ],
    [
      `${label}: hand-tuned nginx`,
      `${handRps.toFixed(0)} req/s (${list(result.hand)}), p50 ${ms(median(result.hand.map((r) => r.p50Ms)))}, workers' CPU ${handCpu.toFixed(1)} us/request`,
    ],
    [
      `${label}: ratio acc / hand-tuned`,
      `${(accRps / handRps).toFixed(2)} (target >= 0.97); per round ${paired.toFixed(2)}; workers' CPU per request ${(accCpu / handCpu).toFixed(2)}`,
    ],
    ...(problems.length > 0
      ? [[`${label}: wrk saw`, problems.join(" | ")] as [string, string]]
      : []),
  ];
}

const machine = machineNote();
const acc = await createAccHome();
const inheritEnv = argFlag("inherit-env");
if (!inheritEnv) dropNodeEnv(acc.env);
// Room for the 10,000 routing entries in the instance port range (below 32768: ephemeral ports).
const ports = { min: 12_000, max: 22_999 };
acc.env.ACC_INSTANCE_PORT_MIN = String(ports.min);
acc.env.ACC_INSTANCE_PORT_MAX = String(ports.max);
const handDir = await makeTempDir("acc-bench-nginx-");
let handNginx: { port: number; child: ChildProcess } | undefined;
const paths = homePaths(acc.home);
const ticksPerSecond = Number((await exec("getconf", ["CLK_TCK"], { timeoutMs: 5_000 })).stdout);
try {
  await acc.ok(["boot"]);
  await acc.ok(["create", "hello", "--name", name]);
  const appPort = (JSON.parse(await acc.ok(["show", name, "--json"])) as { port: number }).port;
  // Workers run as the same user as acc's (as root), so both read and write alike.
  const userLine = /^user [^;]+;$/m.exec(await readFile(paths.nginxConf, "utf8"))?.[0] ?? "";
  const hand = await startHandTuned(handDir, appPort, userLine);
  handNginx = hand;
  await checkAnswer(acc.httpPort, "acc's nginx");
  await checkAnswer(hand.port, "the hand-tuned nginx");
  const atOne = await compare(acc.httpPort, hand.port);

  // At scale the instance's port is the range's last: a range of the same size that ends at it.
  const size = ports.max - ports.min + 1;
  const scaled = { min: appPort - size + 1, max: appPort };
  const nginx = createNginx({
    paths,
    exec,
    mutex: { run: (_key, fn) => fn() },
    config: {
      listenAddress: acc.env.ACC_LISTEN_ADDRESS ?? "127.0.0.1",
      httpPort: acc.httpPort,
      adminHost: "acc.localhost",
      isRoot: process.getuid?.() === 0,
      nginxUser: "acc_nginx",
      instancePorts: scaled,
      requestTimeout: 300,
    },
  });
  await nginx.writeMainConfig();
  await writeFile(
    sitePath(paths, name),
    renderSite({ name, port: appPort, ports: scaled, hosts: [host] }),
  );

  // The other instances as nginx routing entries only, written the way applySite writes them.
  const fakes = instances - 1;
  const fakePort = (i: number): number => scaled.min + (i % (size - 1));
  const writeStarted = performance.now();
  for (let first = 1; first <= fakes; first += 200) {
    const batch = Array.from({ length: Math.min(200, fakes - first + 1) }, (_, k) => first + k);
    await Promise.all(
      batch.map(async (i) => {
        const fake = `route${i}`;
        // Nothing listens there but by chance: these are never requested but for one check.
        await writeFile(
          sitePath(paths, fake),
          renderSite({
            name: fake,
            port: fakePort(i),
            ports: scaled,
            hosts: [`${fake}.localhost`],
          }),
        );
      }),
    );
  }
  const writeMs = performance.now() - writeStarted;
  const reloadStarted = performance.now();
  await nginx.reload();
  const reloadMs = performance.now() - reloadStarted;
  // nginx routes an entry that is only in its files to the waker, which knows no such instance
  // (one whose port nothing on this machine listens on).
  let checked = Math.ceil(fakes / 2);
  while (await portAnswers(fakePort(checked))) checked++;
  const routed = await timedGet(acc.httpPort, `route${checked}.localhost`, {
    timeoutMs: 10_000,
  });
  if (routed.status !== 404 || !routed.body.toLowerCase().includes("not found"))
    throw new Error(`a routing entry answered ${routed.status}: ${routed.body.slice(0, 200)}`);
  await checkAnswer(acc.httpPort, "acc's nginx at scale");
  const atN = await compare(acc.httpPort, hand.port);

  console.log(
    `bench/proxy: wrk -t${threads} -c${connections} -d${duration}s GET ${REQUEST_PATH} (cheap, so the app is not the bottleneck), ` +
      `median of ${runs} runs; acc's nginx: map $host to a key, upstream blocks of ${UPSTREAM_GROUP_SIZE} instance ports, keepalive 64; ` +
      'hand-tuned: upstream keepalive 32, HTTP/1.1, Connection "", buffered access log; same app process',
  );
  console.log(`machine: ${machine}`);
  printTable([
    ...rows("1 instance", atOne),
    [
      `${instances} instances`,
      `1 real, at the last of ${size} ports, + ${fakes} nginx routing entries only (files written in ${ms(writeMs)}, test + reload ${ms(reloadMs)})`,
    ],
    ...rows(`${instances} instances`, atN),
  ]);
} finally {
  if (handNginx) await stopChild(handNginx.child);
  await removeDir(handDir);
  await acc.cleanup();
}
