// HTTPS layouts of acc's nginx at N certificates: "data" (what acc writes: one server,
// `ssl_certificate data:$acc_tls_pem`, each certificate and key inline in a `map` entry read by
// the master at reload), "blocks" (a server block per certificate, files loaded by the master at
// reload) and "variable" (one server, `ssl_certificate $file` from a map: the files loaded by a
// worker at each handshake, so every key must be readable by nginx's workers). Prints nginx -t and reload times, RSS per process and
// handshakes per second (a Node client, the same for both: compare the ratio, not the figure).
// Usage: node dist/bench/tls-layout.js [--n 1000,10000] [--runs 3] [--handshake-ms 3000]
// 40 distinct certificates (made with openssl) are copied round-robin to N files: nginx parses
// and keeps each file on its own whatever its content, and 10,000 openssl runs would take longer
// than the measure itself.
import { spawn } from "node:child_process";
import { chmod, copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import tls from "node:tls";
import { parseArgs } from "node:util";
import { homePaths } from "../src/core/paths.js";
import { listAcceptingWorkers, readMasterPid } from "../src/drivers/nginx/control.js";
import { createNginx, type NginxEvent } from "../src/drivers/nginx/index.js";
import {
  certificatePath,
  hostMapPath,
  keyPath,
  renderHostMap,
  renderSite,
  renderTlsHostMap,
  renderTlsSite,
  sitePath,
  tlsHostMapPath,
  tlsSitePath,
} from "../src/drivers/nginx/render.js";
import { exec } from "../src/lib/exec.js";
import { childrenOf, createLocalMutex, median, rssKb, workerUser } from "./nginx-bench.js";
import { createTestCa } from "../test/harness/certs.js";
import { freePort, makeTempDir, removeDir, waitFor } from "../test/harness/common.js";

const PORTS = { min: 20_000, max: 29_999 };
const DOMAIN = "bench.test";
const DISTINCT = 40;

type Layout = "blocks" | "variable" | "data";

/** Full TLS handshakes (no session reuse) with random names, for `ms`, 8 at a time. */
async function handshakes(port: number, names: string[], ca: string, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let done = 0;
  let failed = 0;
  let firstError: unknown;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const servername = names[Math.floor(Math.random() * names.length)]!;
      const socket = tls.connect({ host: "127.0.0.1", port, servername, ca }, () => {
        done++;
        socket.destroy();
        resolve();
      });
      socket.on("error", (error) => {
        firstError ??= error;
        failed++;
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  if (failed > 0) throw new Error(`${failed} handshakes failed`, { cause: firstError });
  return (done * 1000) / ms;
}

interface Figures {
  testMs: number;
  settledMs: number;
  masterMb: number;
  workerMb: number;
  handshakesPerSec: number;
}

async function measure(
  layout: Layout,
  n: number,
  runs: number,
  handshakeMs: number,
  pems: { cert: string; key: string }[],
  rootPem: string,
): Promise<Figures> {
  const home = await makeTempDir("acc-bench-tls-");
  const paths = homePaths(home);
  const isRoot = process.getuid?.() === 0;
  const events: NginxEvent[] = [];
  const httpsPort = await freePort();
  const nginx = createNginx({
    paths,
    exec,
    config: {
      listenAddress: "127.0.0.1",
      httpPort: await freePort(),
      adminHost: `acc.${DOMAIN}`,
      isRoot,
      nginxUser: isRoot ? await workerUser() : "acc_nginx",
      instancePorts: PORTS,
      requestTimeout: 300,
      https: { port: httpsPort, redirect: false, domain: DOMAIN },
    },
    mutex: createLocalMutex(),
    timeoutMs: 300_000,
    log: (event) => events.push(event),
  });
  let child: ReturnType<typeof spawn> | undefined;
  try {
    await nginx.writeMainConfig();
    const names = Array.from({ length: n }, (_, i) => `i${i}`);
    // The variable layout: its files must be readable by the workers, which load them.
    const openDir = `${home}/tls-open`;
    await mkdir(openDir, { mode: 0o755 });
    const certMap: string[] = [];
    const blocks: string[] = [];
    for (let i = 0; i < n; i += 500) {
      await Promise.all(
        names.slice(i, i + 500).map(async (name, j) => {
          const host = `${name}.${DOMAIN}`;
          const pem = pems[(i + j) % pems.length]!;
          const port = PORTS.min + ((i + j) % (PORTS.max - PORTS.min + 1));
          await writeFile(sitePath(paths, name), renderSite({ name, port, ports: PORTS }));
          await writeFile(hostMapPath(paths, name), renderHostMap({ name, hosts: [host] }));
          if (layout === "blocks") {
            await copyFile(pem.cert, certificatePath(paths, name));
            await copyFile(pem.key, keyPath(paths, name));
            blocks.push(
              [
                "server {",
                `    listen 127.0.0.1:${httpsPort} ssl http2;`,
                `    server_name ${host};`,
                `    ssl_certificate ${certificatePath(paths, name)};`,
                `    ssl_certificate_key ${keyPath(paths, name)};`,
                `    include ${paths.nginxHttpsLocations};`,
                "}",
              ].join("\n"),
            );
          } else if (layout === "data") {
            // What acc writes.
            const cert = await readFile(pem.cert, "utf8");
            const key = await readFile(pem.key, "utf8");
            await writeFile(
              tlsSitePath(paths, name),
              renderTlsSite({ hosts: [host], pem: `${cert.trim()}\n${key.trim()}` }),
            );
            await writeFile(tlsHostMapPath(paths, name), renderTlsHostMap([host]));
          } else {
            await copyFile(pem.cert, `${openDir}/${name}.crt`);
            await copyFile(pem.key, `${openDir}/${name}.key`);
            // What this layout costs in safety: every key readable by nginx's workers.
            await chmod(`${openDir}/${name}.key`, 0o644);
            certMap.push(`${host} ${openDir}/${name};`);
          }
        }),
      );
    }
    if (layout !== "data") {
      await writeFile(`${home}/nginx/certs.map`, `${certMap.join("\n")}\n`);
      const conf = await readFile(paths.nginxConf, "utf8");
      // acc's HTTPS server (from `ssl_certificate data:` to its closing brace) replaced.
      const server =
        / {4}server \{\n {8}listen [^\n]* ssl http2 default_server;\n {8}ssl_certificate data:[\s\S]*?\n {4}\}\n/;
      if (!server.test(conf)) throw new Error("bug: no HTTPS server in nginx.conf");
      const reject = [
        "    server {",
        `        listen 127.0.0.1:${httpsPort} ssl http2 default_server;`,
        "        ssl_reject_handshake on;",
        "    }",
      ];
      await writeFile(
        paths.nginxConf,
        conf.replace(
          server,
          layout === "blocks"
            ? [...reject, ...blocks, ""].join("\n")
            : [
                "    map $ssl_server_name $acc_cert {",
                "        hostnames;",
                `        default ${openDir}/none;`,
                `        include ${home}/nginx/certs.map;`,
                "    }",
                "    server {",
                `        listen 127.0.0.1:${httpsPort} ssl http2 default_server;`,
                "        ssl_certificate $acc_cert.crt;",
                "        ssl_certificate_key $acc_cert.key;",
                `        include ${paths.nginxHttpsLocations};`,
                "    }",
              ].join("\n"),
        ),
      );
    }
    const [file, ...args] = nginx.command();
    child = spawn(file!, args, { detached: true, stdio: "ignore" });
    await nginx.waitRunning(300_000);
    const master = (await readMasterPid(paths.nginxPid, paths.nginxConf))!;
    const masterRss: number[] = [];
    const workerRss: number[] = [];
    for (let run = 0; run < runs; run++) {
      await nginx.reload();
      const current = await waitFor(
        "the old workers to exit",
        async () => {
          const children = await childrenOf(master);
          const accepting = (await listAcceptingWorkers(master)) ?? [];
          return children.length === accepting.length ? children : undefined;
        },
        120_000,
      );
      masterRss.push(await rssKb(master));
      workerRss.push(Math.max(...(await Promise.all(current.map(rssKb)))));
    }
    const hosts = names.map((name) => `${name}.${DOMAIN}`);
    const rate = await handshakes(httpsPort, hosts, rootPem, handshakeMs);
    const ms = (action: string): number =>
      median(events.filter((e) => e.action === action && e.ok).map((e) => e.ms));
    return {
      testMs: ms("test"),
      settledMs: ms("reload"),
      masterMb: median(masterRss) / 1024,
      workerMb: median(workerRss) / 1024,
      handshakesPerSec: rate,
    };
  } finally {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const pid = child.pid;
      const exited = new Promise((resolve) => child!.once("exit", resolve));
      process.kill(pid, "SIGTERM");
      const timer = setTimeout(() => process.kill(-pid, "SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    }
    if (process.env.KEEP_BENCH_HOME === undefined) await removeDir(home);
    else console.error(`kept ${home}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: "string", default: "1000,10000" },
      runs: { type: "string", default: "3" },
      "handshake-ms": { type: "string", default: "3000" },
      layouts: { type: "string", default: "blocks,variable,data" },
    },
  });
  const sizes = values.n.split(",").map(Number);
  const layouts = values.layouts.split(",") as Layout[];
  const runs = Number(values.runs);
  const handshakeMs = Number(values["handshake-ms"]);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1) || !(runs >= 1) || !(handshakeMs > 0)) {
    throw new Error("usage: tls-layout [--n 1000,10000] [--runs 3] [--handshake-ms 3000]");
  }
  const dir = await makeTempDir("acc-bench-ca-");
  try {
    const ca = await createTestCa(dir);
    const pems = [];
    for (let i = 0; i < DISTINCT; i++) pems.push(await ca.issue(`c${i}`, [`*.${DOMAIN}`]));
    for (const n of sizes) {
      const rows: [string, Figures][] = [];
      for (const layout of layouts) {
        const started = performance.now();
        rows.push([layout, await measure(layout, n, runs, handshakeMs, pems, ca.rootPem)]);
        console.error(`${layout} at ${n}: ${Math.round((performance.now() - started) / 1000)} s`);
      }
      console.log(`\n${n} certificates (medians of ${runs} runs; nginx 1.22 here)`);
      console.log("layout    nginx -t  reload settled  RSS master  RSS worker  handshakes/s");
      for (const [layout, f] of rows) {
        console.log(
          `${layout.padEnd(9)} ${`${Math.round(f.testMs)} ms`.padStart(8)}  ${`${Math.round(f.settledMs)} ms`.padStart(14)}  ${`${f.masterMb.toFixed(1)} MB`.padStart(10)}  ${`${f.workerMb.toFixed(1)} MB`.padStart(10)}  ${Math.round(f.handshakesPerSec).toString().padStart(12)}`,
        );
      }
      const [first, base] = rows[0]!;
      for (const [layout, f] of rows.slice(1)) {
        console.log(
          `${layout}/${first}: nginx -t x${(f.testMs / base.testMs).toFixed(2)}, reload x${(f.settledMs / base.settledMs).toFixed(2)}, worker RSS x${(f.workerMb / base.workerMb).toFixed(2)}, handshakes/s x${(f.handshakesPerSec / base.handshakesPerSec).toFixed(2)}`,
        );
      }
    }
  } finally {
    await removeDir(dir);
  }
}

await main();
