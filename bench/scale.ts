// bench/scale: N instances created with --no-start (N=1000; --n 10000 for the big run), then:
// create rate, `acc list --json` time, nginx test + reload-settled time, start/stop time of
// one instance at N (against the same at the first instance), acc's peak memory, nginx memory.
// Usage: node dist/bench/scale.js [--n 1000] [--jobs 8]
import { readFile } from "node:fs/promises";
import path from "node:path";
import { homePaths } from "../src/core/paths.js";
import { createNginx } from "../src/drivers/nginx/index.js";
import { exec } from "../src/lib/exec.js";
import { createAccHome, type AccHome } from "../test/harness/acc.js";
import { runMeasured } from "./run-measured.js";
import { argValue, median, ms, printTable } from "./stats.js";

const n = argValue("n", 1000);
const jobs = argValue("jobs", 8);

async function nginxRssMb(home: string): Promise<{ master: number; workers: number[] }> {
  const masterPid = Number((await readFile(path.join(home, "run/nginx.pid"), "utf8")).trim());
  const rss = async (pid: number): Promise<number> => {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  };
  const { stdout } = await exec("ps", ["-o", "pid=", "--ppid", String(masterPid)]);
  const workers = stdout
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((pid) => pid > 0);
  return { master: await rss(masterPid), workers: await Promise.all(workers.map(rss)) };
}

async function startStop(
  acc: AccHome,
  name: string,
  rounds: number,
): Promise<{ start: number; stop: number }> {
  const start: number[] = [];
  const stop: number[] = [];
  for (let i = 0; i < rounds; i++) {
    start.push((await runMeasured(acc.env, ["start", name])).ms);
    stop.push((await runMeasured(acc.env, ["stop", name])).ms);
  }
  return { start: median(start), stop: median(stop) };
}

const acc = await createAccHome();
// The default port slice of the harness holds 100 instances; this bench needs N.
acc.env.ACC_INSTANCE_PORT_MIN = "20000";
acc.env.ACC_INSTANCE_PORT_MAX = String(20000 + n + 10);
try {
  await acc.ok(["boot"]);
  await acc.ok(["create", "hello", "--name", "first", "--no-start"]);
  const atOne = await startStop(acc, "first", 3);

  const started = performance.now();
  let next = 1;
  let peakCreateKb = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const result = await runMeasured(acc.env, [
        "create",
        "hello",
        "--name",
        `s${i}`,
        "--no-start",
      ]);
      peakCreateKb = Math.max(peakCreateKb, result.maxRssKb);
      if (i % 500 === 0) process.stderr.write(`created ${i}/${n}\n`);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  const createSeconds = (performance.now() - started) / 1000;

  const lists: number[] = [];
  let listKb = 0;
  for (let i = 0; i < 5; i++) {
    const result = await runMeasured(acc.env, ["list", "--json"]);
    lists.push(result.ms);
    listKb = Math.max(listKb, result.maxRssKb);
    const count = (JSON.parse(result.stdout) as unknown[]).length;
    if (count !== n) throw new Error(`list shows ${count} instances, expected ${n}`);
  }

  const paths = homePaths(acc.home);
  const nginx = createNginx({
    paths,
    exec,
    mutex: { run: (_key, fn) => fn() },
    config: {
      listenAddress: acc.env.ACC_LISTEN_ADDRESS ?? "127.0.0.1",
      httpPort: Number(acc.env.ACC_HTTP_PORT),
      adminHost: "acc.localhost",
      isRoot: process.getuid?.() === 0,
      nginxUser: "acc_nginx",
      instancePorts: {
        min: Number(acc.env.ACC_INSTANCE_PORT_MIN),
        max: Number(acc.env.ACC_INSTANCE_PORT_MAX),
      },
      requestTimeout: 300,
    },
  });
  const tests: number[] = [];
  const reloads: number[] = [];
  for (let i = 0; i < 3; i++) {
    let t0 = performance.now();
    await nginx.test();
    tests.push(performance.now() - t0);
    t0 = performance.now();
    await nginx.reload();
    reloads.push(performance.now() - t0);
  }
  const memory = await nginxRssMb(acc.home);
  const atN = await startStop(acc, "first", 3);

  console.log(`bench/scale: ${n} instances (hello, --no-start), ${jobs} concurrent creates`);
  printTable([
    [
      "create rate",
      `${(n / createSeconds).toFixed(1)} instances/s (${createSeconds.toFixed(0)} s for ${n})`,
    ],
    ["acc list --json (median of 5)", `${ms(median(lists))} (target < 200 ms at 10000)`],
    ["nginx -t (median of 3)", ms(median(tests))],
    ["nginx reload settled (median of 3)", ms(median(reloads))],
    [
      "nginx -t + reload settled",
      `${ms(median(tests) + median(reloads))} (target < 500 ms at 10000)`,
    ],
    [
      "nginx RSS master / per worker",
      `${memory.master.toFixed(0)} MB / ${memory.workers.map((w) => w.toFixed(0)).join(", ")} MB (target < 150 MB)`,
    ],
    ["start / stop at 1 instance (CLI, median)", `${ms(atOne.start)} / ${ms(atOne.stop)}`],
    [`start / stop at ${n} instances (CLI, median)`, `${ms(atN.start)} / ${ms(atN.stop)}`],
    [
      "acc peak RSS: create / list --json",
      `${(peakCreateKb / 1024).toFixed(0)} MB / ${(listKb / 1024).toFixed(0)} MB`,
    ],
  ]);
} finally {
  process.stderr.write("cleaning up (destroying the instances)...\n");
  await acc.cleanup();
}
