// bench/monitor: one monitor pass over N instances (10,000 by default), all running, with a
// slice of them active since the last pass (access log lines to read and record). Rows go
// straight into a temp SQLite store; the pass itself runs unchanged, except that stopping is
// a stub that fails the bench: nothing is due by construction (recent activity or long
// timeouts), so the figure is the cost of deciding. Target: median < 0.5 s.
// Usage: node dist/bench/monitor.js [--n 10000] [--active 1000] [--runs 5]
import BetterSqlite3 from "better-sqlite3";
import { appendFile, copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import type { AccConfig } from "../src/core/config.js";
import { homePaths } from "../src/core/paths.js";
import type { AccContext } from "../src/services/context.js";
import { monitorPass, type MonitorReport } from "../src/services/monitor.js";
import { openSqliteStore } from "../src/store/open.js";
import { makeTempDir, removeDir } from "../test/harness/common.js";
import { argValue, median, ms, printTable } from "./stats.js";

const n = argValue("n", 10_000);
const active = Math.min(n, argValue("active", 1000));
const runs = argValue("runs", 5);
const root = path.resolve(import.meta.dirname, "../..");
const MODEL_HASHES = ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"];

const home = await makeTempDir("acc-bench-monitor-");
try {
  const paths = homePaths(home);
  await mkdir(paths.nginxLogs, { recursive: true });
  // Real manifests in shared code folders (named as codeDirOf names them), read and cached
  // the way a pass reads them.
  for (const hash of MODEL_HASHES) {
    const dir = path.join(paths.code, `hello-1.0.0-${hash.slice(0, 12)}`);
    await mkdir(dir, { recursive: true });
    await copyFile(path.join(root, "models/hello/model.toml"), path.join(dir, "model.toml"));
  }
  const store = openSqliteStore(paths.store);
  await store.migrate();

  const now = Date.now();
  const db = new BetterSqlite3(paths.store, { timeout: 10_000 });
  const insert = db.prepare(
    `insert into instances (name, model, model_version, model_hash, state, operation, port, hosts,
       params, idle_timeout, created_at, updated_at, state_changed_at, last_activity_at, last_error)
     values (?, 'hello', '1.0.0', ?, 'running', null, ?, ?, '{}', ?, ?, ?, ?, ?, null)`,
  );
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const name = `b${i}`;
      const started = new Date(now - 3_600_000).toISOString();
      // Inherited (config 15m) with activity within it, a long own timeout, or never.
      const kind = i % 3;
      const idleTimeout = kind === 0 ? null : kind === 1 ? String(24 * 3_600_000) : "never";
      const activity = new Date(now - (i % 600) * 1000).toISOString();
      insert.run(
        name,
        MODEL_HASHES[i % MODEL_HASHES.length],
        20_000 + i,
        JSON.stringify([`${name}.localhost`]),
        idleTimeout,
        started,
        started,
        started,
        activity,
      );
    }
  })();
  db.close();

  const ctx = {
    home,
    paths,
    config: { idle_timeout: 15 * 60_000 } as AccConfig,
    store,
    now: () => new Date(),
    progress: { step: () => undefined },
    manifests: new Map(),
    processes: {
      stopProgram: (name: string) => Promise.reject(new Error(`bench: ${name} must not be due`)),
    },
  } as unknown as AccContext;

  const accessLog = path.join(paths.nginxLogs, "access.log");
  let round = 0;
  // A pass reads what nginx logged since the last one: `active` instances, 5 requests each.
  const logTraffic = async (): Promise<number> => {
    const lines: string[] = [];
    const at = Date.now() / 1000;
    for (let r = 0; r < 5; r++) {
      for (let i = 0; i < active; i++) {
        const name = `b${(round * active + i) % n}`;
        lines.push(
          `${(at + r / 1000).toFixed(3)} ${name} 200 0.002 127.0.0.1 "GET / HTTP/1.1" 512\n`,
        );
      }
    }
    round++;
    const text = lines.join("");
    await appendFile(accessLog, text);
    return text.length;
  };

  const check = (report: MonitorReport): void => {
    if (report.checked !== n || report.would_stop.length > 0 || report.errors.length > 0) {
      throw new Error(`unexpected report: ${JSON.stringify(report).slice(0, 500)}`);
    }
  };
  const pass = async (): Promise<number> => {
    const started = performance.now();
    check(await monitorPass(ctx, { dryRun: true }));
    return performance.now() - started;
  };

  const logBytes = await logTraffic();
  const cold = await pass();
  const quiet: number[] = [];
  const busy: number[] = [];
  for (let i = 0; i < runs; i++) quiet.push(await pass());
  for (let i = 0; i < runs; i++) {
    await logTraffic();
    busy.push(await pass());
  }
  await store.close();
  printTable([
    ["instances (all running)", String(n)],
    ["first pass (manifests read, log read)", ms(cold)],
    [`pass, nothing new in the log (median of ${runs})`, ms(median(quiet))],
    [
      `pass, ${active} instances active: ${5 * active} log lines, ${(logBytes / 1024).toFixed(0)} kB (median of ${runs})`,
      ms(median(busy)),
    ],
    ["target", "< 500 ms"],
  ]);
} finally {
  await removeDir(home);
}
