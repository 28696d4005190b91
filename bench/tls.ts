// bench/tls: HTTPS through acc's nginx, and what each TLS layout costs nginx.
//
// Part 1, throughput, in the same run and in rounds (the order rotates each round): full TLS
// handshakes per second (a new connection per request, no session resumption), resumed ones
// (a new connection per request, the session resumed from nginx's cache, as a returning
// browser does) and requests per second over kept-alive connections, through acc's nginx with
// --certs certificates (one instance each, all routed to one tiny app) and through a hand-tuned
// nginx (one static `server { listen ssl; ssl_certificate FILE; }` with the same certificate
// and key, the same TLS settings, proxying to the same app with kept-alive upstream
// connections). Medians, the ratio acc / hand-tuned (the issue's target: >= 0.9), and the CPU
// time nginx's workers spent per request: this machine is shared, so requests per second vary
// with others' load between runs, while the CPU a request costs nginx varies much less, and
// its ratio is the ratio of what each can serve when nginx has the CPUs.
//
// The client is wrk, not a Node client: on this 2-CPU machine the client shares the CPUs with
// nginx, and a Node TLS client spends more CPU per handshake than nginx does, so the figure was
// mostly the client's (the Node client of the bench before this one saw 0.45x to 1.2x between
// runs of the same layouts). wrk keeps the TLS session when it reconnects (SSL_clear keeps it),
// so it resumes sessions wherever the server lets it: the full handshakes are made against an
// nginx with `ssl_session_cache off` (tickets are off in acc's config and the hand-tuned one),
// the resumed ones against the same nginx with acc's cache; the hand-tuned nginx logs
// $ssl_session_reused and the bench fails if a full handshake was resumed. wrk takes SNI and
// Host from its URL: a Lua script resolves every name to 127.0.0.1, so the URL names the
// instance (no /etc/hosts). wrk does not verify the certificate: the client's cost is the key
// exchange only.
//
// Part 2, reload: `nginx -t`, reload settled (acc's driver: SIGHUP until only new workers
// accept) and RSS of the master and of the largest worker, at each --n, per layout:
//   acc     as built: `ssl_certificate $acc_tls_files.crt` (and .key), the files named by a
//           `map $ssl_server_name` (HOME/nginx/tls/NAME.conf) and loaded by a worker at each
//           full handshake;
//   data    the layout acc had before: `ssl_certificate data:$acc_tls_pem`, each certificate
//           and key inline in a `map $ssl_server_name` entry, read by the master at reload;
//   blocks  a server block per certificate (only at n <= 1000: an OpenSSL context each, ~1.7 GB
//           per process at 10,000).
// Certificates: 40 distinct ones (EC P-256, leaf + intermediate) copied round-robin to N
// files: nginx parses and keeps each file on its own whatever its content.
//
// Usage: node dist/bench/tls.js [--certs 1000] [--rounds 5] [--duration 5] [--threads 2]
//        [--connections 32] [--n 1000,10000] [--runs 3] [--layouts acc,data,blocks]
//        [--parts throughput,reload]
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, chown, copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { homePaths, type HomePaths } from "../src/core/paths.js";
import { readMasterPid } from "../src/drivers/nginx/control.js";
import { createNginx, type Nginx, type NginxEvent } from "../src/drivers/nginx/index.js";
import {
  certificateFiles,
  certificatePath,
  keyPath,
  renderSite,
  renderTlsHostMap,
  renderTlsSite,
  sitePath,
  tlsHostMapPath,
  tlsSitePath,
} from "../src/drivers/nginx/render.js";
import { exec } from "../src/lib/exec.js";
import {
  createLocalMutex,
  settledWorkers,
  rssKb,
  workerUser,
  workersTicks,
} from "./nginx-bench.js";
import { argString, argValue, machineNote, median, printTable } from "./stats.js";
import { createTestCa } from "../test/harness/certs.js";
import { freePort, isAlive, makeTempDir, removeDir, waitFor } from "../test/harness/common.js";

const WRK_BIN = "/usr/bin/wrk";
const NGINX_BIN = "/usr/sbin/nginx";
const DOMAIN = "bench.test";
const DISTINCT = 40;
const TEMP = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"];

const certs = argValue("certs", 1000);
const rounds = argValue("rounds", 5);
const duration = argValue("duration", 5);
const threads = argValue("threads", 2);
const connections = argValue("connections", 32);
const runs = argValue("runs", 3);
const sizes = argString("n", "1000,10000").split(",").map(Number);
const layouts = argString("layouts", "acc,data,blocks").split(",") as Layout[];
const parts = argString("parts", "throughput,reload").split(",");

type Layout = "acc" | "data" | "blocks";
type Pem = { cert: string; key: string };

interface Worker {
  user: string;
  uid: number;
  gid: number;
}

// acc's TLS settings (render.ts), which the hand-tuned nginx copies.
const TLS_SETTINGS = [
  "ssl_protocols TLSv1.2 TLSv1.3;",
  "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;",
  "ssl_prefer_server_ciphers off;",
  "ssl_session_tickets off;",
];

interface Running {
  layout: Layout | "hand";
  port: number;
  /** The name wrk asks for (SNI and Host). */
  host: string;
  master: () => Promise<number>;
  nginx?: Nginx;
  events: NginxEvent[];
  dir: string;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(pid, "SIGTERM");
  const timer = setTimeout(() => {
    if (isAlive(pid)) process.kill(-pid, "SIGKILL");
  }, 30_000);
  await exited;
  clearTimeout(timer);
}

/**
 * acc's nginx with `n` instances, each with its certificate in `layout`, started. Each instance
 * is routed to a port of `ports` (with a range of one port, all go to that port's app).
 */
async function startAcc(options: {
  layout: Layout;
  n: number;
  pems: Pem[];
  worker: Worker | undefined;
  ports: { min: number; max: number };
  sessionCache: boolean;
}): Promise<Running> {
  const { layout, n, pems, worker, ports } = options;
  const dir = await makeTempDir("acc-bench-tls-");
  const paths = homePaths(dir);
  const events: NginxEvent[] = [];
  const httpsPort = await freePort();
  const nginx = createNginx({
    paths,
    exec,
    config: {
      listenAddress: "127.0.0.1",
      httpPort: await freePort(),
      adminHost: `acc.${DOMAIN}`,
      isRoot: worker !== undefined,
      nginxUser: worker?.user ?? "acc_nginx",
      instancePorts: ports,
      requestTimeout: 300,
      https: { port: httpsPort, redirect: false, domain: DOMAIN },
    },
    mutex: createLocalMutex(),
    timeoutMs: 300_000,
    log: (event) => events.push(event),
  });
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (child) await stopChild(child);
    if (process.env.KEEP_BENCH_HOME === undefined) await removeDir(dir);
    else console.error(`kept ${dir}`);
  };
  try {
    await nginx.writeMainConfig();
    const blocks: string[] = [];
    for (let i = 0; i < n; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, n - i) }, (_, j) => i + j).map(async (k) => {
          const name = `i${k}`;
          const host = `${name}.${DOMAIN}`;
          const pem = pems[k % pems.length]!;
          const port = ports.min + (k % (ports.max - ports.min + 1));
          await writeFile(sitePath(paths, name), renderSite({ name, port, ports, hosts: [host] }));
          if (layout === "acc") {
            await writeAccCertificate(paths, name, host, pem, worker);
          } else if (layout === "data") {
            const cert = (await readFile(pem.cert, "utf8")).trim();
            const key = (await readFile(pem.key, "utf8")).trim();
            await writeFile(`${paths.nginxTls}/${name}.pem`, `${host} "${cert}\n${key}";\n`, {
              mode: 0o600,
            });
          } else {
            await copyFile(pem.cert, certificatePath(paths, name));
            await copyFile(pem.key, keyPath(paths, name));
            blocks.push(
              [
                "    server {",
                `        listen 127.0.0.1:${httpsPort} ssl http2;`,
                `        server_name ${host};`,
                `        ssl_certificate ${certificatePath(paths, name)};`,
                `        ssl_certificate_key ${keyPath(paths, name)};`,
                `        include ${paths.nginxHttpsLocations};`,
                "    }",
              ].join("\n"),
            );
          }
        }),
      );
    }
    let conf = await readFile(paths.nginxConf, "utf8");
    if (!options.sessionCache)
      conf = replaceOnce(conf, /ssl_session_cache [^;]+;/, "ssl_session_cache off;");
    if (layout !== "acc") {
      // acc's map $ssl_server_name and its HTTPS server, replaced by the layout's. The admin
      // host's HTTPS server (which the bench never asks) still names $acc_tls_files: an empty
      // map keeps it valid.
      const adminMap = [
        "    map $ssl_server_name $acc_tls_files {",
        '        default "";',
        "    }",
      ];
      const https =
        / {4}map \$ssl_server_name [\s\S]*?\n {8}listen [^\n]* ssl http2 default_server;\n[\s\S]*?\n {4}\}\n/;
      const listen = `        listen 127.0.0.1:${httpsPort} ssl http2 default_server;`;
      conf = replaceOnce(
        conf,
        https,
        layout === "blocks"
          ? [
              ...adminMap,
              "    server {",
              listen,
              "        ssl_reject_handshake on;",
              "    }",
              ...blocks,
              "",
            ].join("\n")
          : [
              ...adminMap,
              "    map $ssl_server_name $acc_tls_pem {",
              "        hostnames;",
              '        default "";',
              `        include ${paths.nginxTls}/*.pem;`,
              "    }",
              "    server {",
              listen,
              "        ssl_certificate data:$acc_tls_pem;",
              "        ssl_certificate_key data:$acc_tls_pem;",
              `        include ${paths.nginxHttpsLocations};`,
              "    }",
              "",
            ].join("\n"),
      );
    }
    await writeFile(paths.nginxConf, conf);
    const [file, ...args] = nginx.command();
    child = spawn(file!, args, { detached: true, stdio: "ignore" });
    await nginx.waitRunning(300_000);
    return {
      layout,
      port: httpsPort,
      host: `i${Math.floor(n / 2)}.${DOMAIN}`,
      master: async () => (await readMasterPid(paths.nginxPid, paths.nginxConf))!,
      nginx,
      events,
      dir,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function replaceOnce(text: string, pattern: RegExp, replacement: string): string {
  if (!pattern.test(text)) throw new Error(`bug: ${pattern} not in nginx.conf`);
  return text.replace(pattern, replacement);
}

/** An instance's certificate as acc writes it (the driver's applyCertificate, without reload). */
async function writeAccCertificate(
  paths: HomePaths,
  name: string,
  host: string,
  pem: Pem,
  worker: Worker | undefined,
): Promise<void> {
  for (const [from, to] of [
    [pem.cert, certificatePath(paths, name)],
    [pem.key, keyPath(paths, name)],
  ] as const) {
    await copyFile(from, to);
    if (worker) await chown(to, 0, worker.gid);
    await chmod(to, worker ? 0o640 : 0o600);
  }
  await writeFile(
    tlsSitePath(paths, name),
    renderTlsSite({ hosts: [host], files: certificateFiles(paths, name) }),
  );
  await writeFile(tlsHostMapPath(paths, name), renderTlsHostMap([host]));
}

/** One static HTTPS server, as one would write it by hand for one app. */
async function startHand(options: {
  pem: Pem;
  appPort: number;
  worker: Worker | undefined;
  host: string;
  sessionCache: boolean;
}): Promise<Running> {
  const dir = await makeTempDir("acc-bench-tls-hand-");
  const port = await freePort();
  for (const t of TEMP) await mkdir(path.join(dir, "temp", t), { recursive: true });
  const user = options.worker ? `user ${options.worker.user};` : "";
  const conf = path.join(dir, "nginx.conf");
  await writeFile(
    conf,
    `worker_processes auto;
${user}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {
    worker_connections 16384;
}
http {
${TEMP.map((t) => `    ${t}_temp_path ${dir}/temp/${t};`).join("\n")}
    log_format tls '$msec $ssl_session_reused $status $request_time $remote_addr "$request" $body_bytes_sent';
    access_log ${dir}/access.log tls buffer=64k flush=1s;
${TLS_SETTINGS.map((line) => `    ${line}`).join("\n")}
    ssl_session_cache ${options.sessionCache ? "shared:hand_tls:10m" : "off"};
    ssl_session_timeout 1d;
    upstream app {
        server 127.0.0.1:${options.appPort};
        keepalive 32;
    }
    server {
        listen 127.0.0.1:${port} ssl http2;
        ssl_certificate ${options.pem.cert};
        ssl_certificate_key ${options.pem.key};
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
}
`,
  );
  const child = spawn(
    NGINX_BIN,
    ["-p", `${dir}/`, "-c", conf, "-e", path.join(dir, "error.log"), "-g", "daemon off;"],
    { detached: true, stdio: "ignore" },
  );
  const pidFile = path.join(dir, "nginx.pid");
  await waitFor(
    "the hand-tuned nginx to start",
    async () => {
      if (child.exitCode !== null)
        throw new Error(`nginx exited: ${await readFile(path.join(dir, "error.log"), "utf8")}`);
      return (await readFile(pidFile, "utf8").catch(() => "")).trim() || undefined;
    },
    10_000,
  );
  return {
    layout: "hand",
    port,
    host: options.host,
    master: async () => Number((await readFile(pidFile, "utf8")).trim()),
    events: [],
    dir,
    async stop() {
      await stopChild(child);
      await removeDir(dir);
    },
  };
}

type Mode = "full" | "resumed" | "keepalive";
const MODES: { mode: Mode; label: string }[] = [
  { mode: "full", label: "full handshakes/s" },
  { mode: "resumed", label: "resumed handshakes/s" },
  { mode: "keepalive", label: "kept-alive requests/s" },
];

interface Sample {
  rps: number;
  /** CPU time of nginx's workers per request, in microseconds. */
  cpuUs: number;
}

async function runWrk(
  target: Running,
  luaScript: string,
  mode: Mode,
  ticksPerSecond: number,
): Promise<Sample> {
  const args = [
    `-t${threads}`,
    `-c${connections}`,
    `-d${duration}s`,
    "-s",
    luaScript,
    ...(mode === "keepalive" ? [] : ["-H", "Connection: close"]),
    `https://${target.host}:${target.port}/`,
  ];
  const master = await target.master();
  const before = await workersTicks(master);
  const { stdout } = await exec(WRK_BIN, args, { timeoutMs: (duration + 30) * 1000 });
  const ticks = (await workersTicks(master)) - before;
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1];
  const requests = /(\d+) requests in/.exec(stdout)?.[1];
  if (rps === undefined || requests === undefined) {
    throw new Error(`cannot read wrk's output:\n${stdout}`);
  }
  const problems = [
    /Non-2xx or 3xx responses: \d+/.exec(stdout)?.[0],
    /Socket errors: .*/.exec(stdout)?.[0],
  ].filter((p): p is string => p !== undefined);
  if (problems.length > 0) {
    throw new Error(`wrk ${args.join(" ")} against ${target.layout}: ${problems.join("; ")}`);
  }
  return { rps: Number(rps), cpuUs: (ticks * 1e6) / ticksPerSecond / Number(requests) };
}

/** How many of the hand-tuned nginx's logged requests came over a resumed TLS session. */
async function resumedShare(hand: Running): Promise<{ resumed: number; all: number }> {
  const lines = (await readFile(path.join(hand.dir, "access.log"), "utf8"))
    .split("\n")
    .filter(Boolean);
  return { resumed: lines.filter((line) => line.split(" ")[1] === "r").length, all: lines.length };
}

async function throughput(pems: Pem[], worker: Worker | undefined): Promise<[string, string][]> {
  const ticksPerSecond = Number((await exec("getconf", ["CLK_TCK"], { timeoutMs: 5_000 })).stdout);
  const app = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok\n");
  });
  app.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
  const appPort = (app.address() as { port: number }).port;
  const dir = await makeTempDir("acc-bench-wrk-");
  const lua = path.join(dir, "resolve.lua");
  // Every name is 127.0.0.1: the URL's name is still what wrk sends as SNI and Host.
  await writeFile(
    lua,
    'wrk.resolve = function(host, service) wrk.addrs = wrk.lookup("127.0.0.1", service) end\n',
  );
  // Per layout, one nginx without a session cache (full handshakes, kept-alive requests) and
  // one with it (resumed handshakes).
  const running: { layout: string; off: Running; on: Running }[] = [];
  const stops: Running[] = [];
  try {
    const accLayouts = layouts.filter((l) => l !== "blocks" || certs <= 1000);
    for (const layout of accLayouts) {
      const start = async (sessionCache: boolean): Promise<Running> => {
        const r = await startAcc({
          layout,
          n: certs,
          pems,
          worker,
          ports: { min: appPort, max: appPort },
          sessionCache,
        });
        stops.push(r);
        return r;
      };
      running.push({ layout, off: await start(false), on: await start(true) });
    }
    const target = running[0]!.off.host;
    const pem = pems[Number(/^i(\d+)\./.exec(target)![1]) % pems.length]!;
    const startHandTuned = async (sessionCache: boolean): Promise<Running> => {
      const r = await startHand({ pem, appPort, worker, host: target, sessionCache });
      stops.push(r);
      return r;
    };
    running.unshift({
      layout: "hand",
      off: await startHandTuned(false),
      on: await startHandTuned(true),
    });
    const figures = new Map<string, Record<Mode, Sample[]>>();
    for (const r of running) {
      figures.set(r.layout, { full: [], resumed: [], keepalive: [] });
      // Warm-up, and a check that each answers (runWrk fails on errors and non-2xx answers).
      await runWrk(r.off, lua, "keepalive", ticksPerSecond);
      await runWrk(r.on, lua, "resumed", ticksPerSecond);
    }
    for (let round = 0; round < rounds; round++) {
      const order = running.map((_, i) => running[(i + round) % running.length]!);
      for (const { mode } of MODES) {
        for (const r of order) {
          const sample = await runWrk(mode === "resumed" ? r.on : r.off, lua, mode, ticksPerSecond);
          figures.get(r.layout)![mode].push(sample);
        }
      }
      console.error(`round ${round + 1}/${rounds} done`);
    }
    // Its access log is flushed each second: then every request of the runs is in it.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const off = await resumedShare(running[0]!.off);
    const on = await resumedShare(running[0]!.on);
    if (off.resumed > 0) throw new Error(`bug: ${off.resumed} full handshakes were resumed`);
    const rows: [string, string][] = [];
    const hand = figures.get("hand")!;
    for (const [layout, f] of figures) {
      for (const { mode, label } of MODES) {
        const rps = median(f[mode].map((s) => s.rps));
        const cpu = median(f[mode].map((s) => s.cpuUs));
        const handRps = median(hand[mode].map((s) => s.rps));
        const handCpu = median(hand[mode].map((s) => s.cpuUs));
        const list = f[mode].map((s) => s.rps.toFixed(0)).join(", ");
        rows.push([
          `${layout}: ${label}`,
          `${rps.toFixed(0)} (${list})${layout === "hand" ? "" : ` x${(rps / handRps).toFixed(2)}`}; ` +
            `workers' CPU ${cpu.toFixed(0)} us/request${layout === "hand" ? "" : ` (hand-tuned's / this: x${(handCpu / cpu).toFixed(2)})`}`,
        ]);
      }
    }
    rows.push([
      "hand-tuned: sessions resumed",
      `${off.resumed} of ${off.all} without a cache, ${on.resumed} of ${on.all} with it`,
    ]);
    return rows;
  } finally {
    for (const r of stops) await r.stop();
    await new Promise((resolve) => app.close(resolve));
    await removeDir(dir);
  }
}

async function reloadFigures(
  layout: Layout,
  n: number,
  pems: Pem[],
  worker: Worker | undefined,
): Promise<{ testMs: number; settledMs: number; masterMb: number; workerMb: number }> {
  const r = await startAcc({
    layout,
    n,
    pems,
    worker,
    ports: { min: 20_000, max: 29_999 },
    sessionCache: true,
  });
  try {
    const master = await r.master();
    const masterRss: number[] = [];
    const workerRss: number[] = [];
    for (let run = 0; run < runs; run++) {
      await r.nginx!.reload();
      const current = await settledWorkers(master, 120_000);
      masterRss.push(await rssKb(master));
      workerRss.push(Math.max(...(await Promise.all(current.map(rssKb)))));
    }
    const ms = (action: string): number =>
      median(r.events.filter((e) => e.action === action && e.ok).map((e) => e.ms));
    return {
      testMs: ms("test"),
      settledMs: ms("reload"),
      masterMb: median(masterRss) / 1024,
      workerMb: median(workerRss) / 1024,
    };
  } finally {
    await r.stop();
  }
}

async function main(): Promise<void> {
  const isRoot = process.getuid?.() === 0;
  let worker: Worker | undefined;
  if (isRoot) {
    const user = await workerUser();
    const id = async (flag: string): Promise<number> =>
      Number((await exec("id", [flag, user], { timeoutMs: 5_000 })).stdout.trim());
    worker = { user, uid: await id("-u"), gid: await id("-g") };
  }
  const machine = machineNote();
  const caDir = await makeTempDir("acc-bench-ca-");
  try {
    const ca = await createTestCa(caDir);
    const pems: Pem[] = [];
    for (let i = 0; i < DISTINCT; i++) pems.push(await ca.issue(`c${i}`, [`*.${DOMAIN}`]));
    // The hand-tuned nginx's workers read nothing but what the master gave them.
    for (const pem of pems) await chmod(pem.key, 0o600);
    console.log(`bench/tls; machine: ${machine}`);
    if (parts.includes("throughput")) {
      const rows = await throughput(pems, worker);
      console.log(
        `\nthroughput: wrk -t${threads} -c${connections} -d${duration}s, medians of ${rounds} rounds; ` +
          `acc's nginx with ${certs} certificates; full handshakes: Connection: close, session cache off`,
      );
      printTable(rows);
    }
    if (parts.includes("reload")) {
      for (const n of sizes) {
        const rows: [string, string][] = [];
        for (const layout of layouts) {
          if (layout === "blocks" && n > 1000) continue;
          const started = performance.now();
          const f = await reloadFigures(layout, n, pems, worker);
          console.error(`${layout} at ${n}: ${Math.round((performance.now() - started) / 1000)} s`);
          rows.push([
            `${n} certificates, ${layout}`,
            `nginx -t ${Math.round(f.testMs)} ms, reload settled ${Math.round(f.settledMs)} ms, RSS master ${f.masterMb.toFixed(1)} MB, largest worker ${f.workerMb.toFixed(1)} MB`,
          ]);
        }
        console.log(`\nreload: medians of ${runs} reloads`);
        printTable(rows);
      }
    }
  } finally {
    await removeDir(caDir);
  }
}

await main();
