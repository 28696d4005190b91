// bench/lifecycle: median create, start (to healthy), stop and destroy times of a hello
// instance through the CLI, and acc's own start overhead: the start measured inside acc
// (start call to first healthy answer, from the start event) minus the same app's boot
// when started by hand and polled the same way.  Usage: node dist/bench/lifecycle.js [--runs 10]
import path from "node:path";
import { openSqliteStore } from "../src/store/open.js";
import { bootHelloByHand } from "./by-hand.js";
import { createAccHome } from "../test/harness/acc.js";
import { makeTempDir, removeDir } from "../test/harness/common.js";
import { argValue, median, ms, printTable } from "./stats.js";

const runs = argValue("runs", 10);

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

const acc = await createAccHome();
const dataDir = await makeTempDir("acc-bench-data-");
try {
  await acc.ok(["boot"]);
  const create: number[] = [];
  const start: number[] = [];
  const stop: number[] = [];
  const destroy: number[] = [];
  const inside: number[] = [];
  const byHand: number[] = [];
  for (let i = 0; i < runs; i++) {
    const name = `bench${i}`;
    create.push((await timed(() => acc.ok(["create", "hello", "--name", name, "--no-start"])))[1]);
    start.push((await timed(() => acc.ok(["start", name])))[1]);
    stop.push((await timed(() => acc.ok(["stop", name])))[1]);
    destroy.push((await timed(() => acc.ok(["destroy", name, "--yes", "--no-backup"])))[1]);
    byHand.push((await bootHelloByHand(dataDir)).healthy);
  }
  const store = openSqliteStore(path.join(acc.home, "state.db"));
  for (const event of await store.listEvents({ limit: 100_000 })) {
    if (event.action === "start" && event.outcome === "ok" && event.durationMs !== null)
      inside.push(event.durationMs);
  }
  await store.close();
  const overhead = median(inside) - median(byHand);
  console.log(
    `bench/lifecycle: hello, ${runs} runs, medians (CLI wall time includes node start-up of the acc process)`,
  );
  printTable([
    ["create --no-start (CLI)", ms(median(create))],
    ["start to healthy (CLI)", ms(median(start))],
    ["stop (CLI)", ms(median(stop))],
    ["destroy --no-backup (CLI)", ms(median(destroy))],
    ["start inside acc (call to healthy)", ms(median(inside))],
    ["same app booted by hand", ms(median(byHand))],
    ["acc's own start overhead", `${ms(overhead)} (target <= 10 ms)`],
  ]);
} finally {
  await acc.cleanup();
  await removeDir(dataDir);
}
