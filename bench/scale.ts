// bench/scale: the scale curve. One booted home grows through the sizes (100, 1,000 and 10,000
// instances by default, all hello, created with --no-start by the CLI as a user would); at each
// size it measures (bench/scale-measure.ts): the creates that got it there (median per create
// and rate), `acc start` / `acc stop` of one instance (CLI through acc server; acc server's CPU
// for it, and the duration its event records), `acc list --json` through acc server and direct
// (server stopped meanwhile), one monitor pass (acc server's own, asked with `acc monitor
// --dry-run`: its duration_ms; and monitorPass in this process on the same store, as it is and
// with every instance seen as running, so the per-running-instance part of a pass shows),
// nginx -t and reload, and memory. The table has a column per size and the growth from the
// first size to the last, so that flat and linear read at a glance.
// The instance names are PREFIX0, PREFIX1... (--prefix, `sc` by default): instance users are
// global on the machine. The ports are --port-min.. (23000 by default: below it are the test
// harness's slices and bench/proxy's range). SIGINT or SIGTERM: no more creates, the figures so
// far stay printed, and the home is cleaned up (its instance users too: minutes at 10,000).
// Usage: node dist/bench/scale.js [--sizes 100,1000,10000] [--jobs 8] [--runs 5] [--prefix sc]
//   [--port-min 23000]
import os from "node:os";
import { createAccHome } from "../test/harness/acc.js";
import { NO_DATABASE } from "../test/harness/api.js";
import { runMeasured } from "./run-measured.js";
import { measureAt, printFigures, type Figures } from "./scale-measure.js";
import { argString, argValue, machineNote, median } from "./stats.js";

const sizes = argString("sizes", "100,1000,10000")
  .split(",")
  .map((s) => Number(s.trim()));
if (
  sizes.some((s) => !Number.isInteger(s) || s < 2) ||
  sizes.some((s, i) => s <= (sizes[i - 1] ?? 0))
)
  throw new Error(`--sizes needs growing whole numbers above 1, got ${sizes.join(",")}`);
const jobs = argValue("jobs", 8);
const runs = argValue("runs", 5);
const prefix = argString("prefix", "sc");
const portMin = argValue("port-min", 23_000);
const largest = sizes.at(-1) ?? 0;
const instancePorts = { min: portMin, max: portMin + largest + 10 };

const acc = await createAccHome({
  env: {
    ...NO_DATABASE,
    // Long, not "never": a pass then decides for every running instance, none of them due.
    ACC_IDLE_TIMEOUT: "30d",
    ACC_INSTANCE_PORT_MIN: String(instancePorts.min),
    ACC_INSTANCE_PORT_MAX: String(instancePorts.max),
  },
});
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (!stopping) process.stderr.write(`${signal}: stopping after the creates under way\n`);
    stopping = true;
  });
}
const results: Figures[] = [];
const benchStarted = performance.now();
console.log(
  `bench/scale: sizes ${sizes.join(", ")} (hello, --no-start, ${jobs} concurrent creates), medians of ${runs}; ${machineNote()}`,
);
try {
  await acc.ok(["boot"]);
  let made = 0;
  for (const n of sizes) {
    const perCreate: number[] = [];
    let peakKb = 0;
    const stepStarted = performance.now();
    const worker = async (): Promise<void> => {
      while (made < n && !stopping) {
        const i = made++;
        const result = await runMeasured(acc.env, [
          "create",
          "hello",
          "--name",
          `${prefix}${i}`,
          "--no-start",
        ]);
        perCreate.push(result.ms);
        peakKb = Math.max(peakKb, result.maxRssKb);
        if ((i + 1) % 500 === 0) {
          const rate = perCreate.length / ((performance.now() - stepStarted) / 1000);
          process.stderr.write(
            `${new Date().toISOString()} created ${i + 1}/${largest} (${rate.toFixed(1)}/s, load ${os.loadavg()[0]?.toFixed(2)})\n`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: jobs }, worker));
    if (stopping) break;
    const seconds = (performance.now() - stepStarted) / 1000;
    process.stderr.write(`${new Date().toISOString()} ${n} instances; measuring\n`);
    const figures = await measureAt(acc, n, { name: `${prefix}0`, runs, instancePorts });
    results.push({
      ...figures,
      create: { median: median(perCreate), rate: perCreate.length / seconds, seconds, peakKb },
    });
    printFigures(results);
  }
} finally {
  process.stderr.write(
    `bench ran ${((performance.now() - benchStarted) / 1000).toFixed(0)} s; cleaning up (destroying ${prefix}* users)...\n`,
  );
  const cleanupStarted = performance.now();
  await acc.cleanup();
  process.stderr.write(
    `cleaned up in ${((performance.now() - cleanupStarted) / 1000).toFixed(0)} s\n`,
  );
}
