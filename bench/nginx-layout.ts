// Measures acc's nginx layout (one server, `map $host`, upstreams by name) at N instances:
// `nginx -t`, reload until settled, memory per nginx process, and one create (applySite).
// Usage: node dist/bench/nginx-layout.js [--n 10000] [--runs 3] [--names varied|sequential]
// nginx finds an upstream by name with a linear scan that compares lengths first, then the
// characters: "sequential" names (app-000001...) share length and prefix, its worst case.
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { homePaths } from "../src/core/paths.js";
import {
  fetchGeneration,
  listAcceptingWorkers,
  readMasterPid,
  waitSettled,
} from "../src/drivers/nginx/control.js";
import { createNginx, type NginxEvent } from "../src/drivers/nginx/index.js";
import { renderGeneration, renderSite, sitePath } from "../src/drivers/nginx/render.js";
import { exec } from "../src/lib/exec.js";
import {
  childrenOf,
  createLocalMutex,
  settledWorkers,
  median,
  rssKb,
  workerUser,
} from "./nginx-bench.js";
import { freePort, makeTempDir, removeDir, waitFor } from "../test/harness/common.js";

/** acc's default instance port range: the upstream has a server per port. */
const PORTS = { min: 20_000, max: 29_999 };
const NGINX_BIN = "/usr/sbin/nginx";

/** Proportional set size: shared pages split among the processes that share them. */
async function pssKb(pid: number): Promise<number> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, "utf8");
  return Number(/^Pss:\s+(\d+) kB$/m.exec(rollup)?.[1] ?? Number.NaN);
}

/** Instance-like names of varied length, the same on every run (a fixed-seed generator). */
function variedNames(n: number): string[] {
  let seed = 12345;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: n }, (_, i) => {
    const length = 3 + (next() % 12);
    const word = Array.from({ length }, () => "abcdefghijklmnopqrstuvwxyz"[next() % 26]).join("");
    return `${word}-${i.toString(36)}`;
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: "string", default: "10000" },
      runs: { type: "string", default: "3" },
      names: { type: "string", default: "varied" },
    },
  });
  const n = Number(values.n);
  const runs = Number(values.runs);
  if (
    !Number.isInteger(n) ||
    n < 1 ||
    !Number.isInteger(runs) ||
    runs < 1 ||
    !["varied", "sequential"].includes(values.names)
  ) {
    throw new Error("usage: nginx-layout [--n 10000] [--runs 3] [--names varied|sequential]");
  }

  const home = await makeTempDir("acc-bench-nginx-");
  const paths = homePaths(home);
  const isRoot = process.getuid?.() === 0;
  const events: NginxEvent[] = [];
  const nginx = createNginx({
    paths,
    exec,
    config: {
      listenAddress: "127.0.0.1",
      httpPort: await freePort(),
      adminHost: "acc.localhost",
      isRoot,
      nginxUser: isRoot ? await workerUser() : "acc_nginx",
      instancePorts: PORTS,
      requestTimeout: 300,
    },
    mutex: createLocalMutex(),
    nginxBin: NGINX_BIN,
    timeoutMs: 120_000,
    log: (event) => events.push(event),
  });
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<void> | undefined;
  try {
    await nginx.writeMainConfig();
    const started = performance.now();
    const names =
      values.names === "sequential"
        ? Array.from({ length: n }, (_, i) => `app-${String(i + 1).padStart(6, "0")}`)
        : variedNames(n);
    for (let i = 0; i < names.length; i += 500) {
      await Promise.all(
        names.slice(i, i + 500).map(async (name, j) => {
          const port = PORTS.min + ((i + j) % (PORTS.max - PORTS.min + 1));
          await writeFile(
            sitePath(paths, name),
            renderSite({ name, port, ports: PORTS, hosts: [`${name}.localhost`] }),
          );
        }),
      );
    }
    console.log(`wrote ${n} instances' files in ${Math.round(performance.now() - started)} ms`);

    const testMs: number[] = [];
    for (let run = 0; run < runs; run++) {
      const t0 = performance.now();
      await nginx.test();
      testMs.push(performance.now() - t0);
    }

    const [file, ...args] = nginx.command();
    child = spawn(file!, args, { detached: true, stdio: "ignore" });
    const spawned = child;
    exited = new Promise((resolve) => spawned.once("exit", () => resolve()));
    const t0 = performance.now();
    await nginx.waitRunning(120_000);
    const startMs = performance.now() - t0;
    const master = (await readMasterPid(paths.nginxPid, paths.nginxConf))!;
    const freshWorkers = await childrenOf(master);
    const freshMasterRss = await rssKb(master);
    const freshWorkerRss = Math.max(...(await Promise.all(freshWorkers.map(rssKb))));

    const firstAnswerMs: number[] = [];
    const settledMs: number[] = [];
    const masterRss: number[] = [];
    const workerRss: number[] = [];
    const totalPss: number[] = [];
    let workers = 0;
    for (let run = 0; run < runs; run++) {
      const generation = `bench-${run}-${Date.now()}`;
      await writeFile(paths.nginxGeneration, renderGeneration(generation));
      const oldWorkers = await listAcceptingWorkers(master);
      const t1 = performance.now();
      process.kill(master, "SIGHUP");
      await waitFor(
        "the new generation",
        async () =>
          (await fetchGeneration(paths.nginxControlSocket, 2_000)) === generation
            ? true
            : undefined,
        120_000,
        5,
      );
      firstAnswerMs.push(performance.now() - t1);
      await waitSettled({
        socketPath: paths.nginxControlSocket,
        masterPid: master,
        generation,
        oldWorkers,
        timeoutMs: 120_000,
      });
      settledMs.push(performance.now() - t1);
      // Memory once the old workers are gone, so that only the live generation is counted.
      const current = await settledWorkers(master, 60_000);
      workers = current.length;
      masterRss.push(await rssKb(master));
      workerRss.push(Math.max(...(await Promise.all(current.map(rssKb)))));
      const pss = await Promise.all([master, ...current].map(pssKb));
      totalPss.push(pss.reduce((sum, kb) => sum + kb, 0));
    }

    // One create at scale: its own test, reload and settle.
    const applyMs: number[] = [];
    for (let run = 0; run < runs; run++) {
      const name = `new-${run}`;
      const t2 = performance.now();
      await nginx.applySite({ name, port: PORTS.min + run, hosts: [`${name}.localhost`] });
      applyMs.push(performance.now() - t2);
    }

    // Twenty creates at once share their test and reload.
    const reloadsBefore = events.filter((e) => e.action === "reload").length;
    const t3 = performance.now();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        nginx.applySite({
          name: `burst-${i}`,
          port: PORTS.min + 100 + i,
          hosts: [`burst-${i}.localhost`],
        }),
      ),
    );
    const burstMs = performance.now() - t3;
    const burstReloads = events.filter((e) => e.action === "reload").length - reloadsBefore;

    const ms = (value: number): string => `${Math.round(value)} ms`;
    const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;
    const rows: [string, string][] = [
      ["instances", String(n)],
      ["nginx -t (median)", ms(median(testMs))],
      ["start until answering", ms(startMs)],
      ["reload: first new-generation answer (median)", ms(median(firstAnswerMs))],
      ["reload: settled, old workers not accepting (median)", ms(median(settledMs))],
      ["RSS master, after start", mb(freshMasterRss)],
      [`RSS worker, largest of ${freshWorkers.length}, after start`, mb(freshWorkerRss)],
      ["RSS master, after each reload (median)", mb(median(masterRss))],
      [`RSS worker, largest of ${workers}, after each reload (median)`, mb(median(workerRss))],
      ["PSS master + workers, after each reload (median)", mb(median(totalPss))],
      ["applySite, one create: test + reload + settle (median)", ms(median(applyMs))],
      ["applySite x20 concurrent: wall time", `${ms(burstMs)} (${burstReloads} reloads)`],
    ];
    const width = Math.max(...rows.map(([label]) => label.length));
    console.log(
      `\nnginx layout at ${n} instances, ${values.names} names (${runs} runs each, ${NGINX_BIN})`,
    );
    for (const [label, value] of rows) console.log(`${label.padEnd(width)}  ${value}`);
  } finally {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, "SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        exited!.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 30_000))),
      ]);
      clearTimeout(timer);
      // Its process group: the master and any worker it left.
      if (!stopped) process.kill(-child.pid, "SIGKILL");
    }
    await removeDir(home);
  }
}

await main();
