// bench/list: `acc list --json` time and peak memory with N instances in the store
// (N=10000 by default). The rows are written straight into the store (a create costs ~0.3 s
// each; bench/scale measures creates): this measures the list itself, as a user runs it.
// Usage: node dist/bench/list.js [--n 10000]
import path from "node:path";
import { openSqliteStore } from "../src/store/open.js";
import { createModelRegistry } from "../src/services/models.js";
import { createAccHome } from "../test/harness/acc.js";
import { argValue, median, ms, printTable } from "./stats.js";
import { runMeasured } from "./run-measured.js";

const n = argValue("n", 10_000);
const root = path.resolve(import.meta.dirname, "../..");

const acc = await createAccHome();
try {
  const hello = await createModelRegistry({
    bundledDir: path.join(root, "models"),
    userDir: "/nonexistent",
  }).get("hello");
  const store = openSqliteStore(path.join(acc.home, "state.db"));
  const now = new Date().toISOString();
  for (let i = 0; i < n; i++) {
    await store.insertInstance(
      {
        name: `l${i}`,
        model: "hello",
        modelVersion: hello.manifest.version,
        modelHash: hello.hash,
        hosts: [`l${i}.localhost`],
        params: { greeting: "Hello" },
        idleTimeout: undefined,
        portRange: { min: 1, max: 65535 },
      },
      now,
    );
  }
  await store.close();
  const times: number[] = [];
  let peakKb = 0;
  for (let i = 0; i < 5; i++) {
    const result = await runMeasured(acc.env, ["list", "--json"]);
    const count = (JSON.parse(result.stdout) as unknown[]).length;
    if (count !== n) throw new Error(`list shows ${count} instances, expected ${n}`);
    times.push(result.ms);
    peakKb = Math.max(peakKb, result.maxRssKb);
  }
  console.log(`bench/list: ${n} instances in the store (rows written directly), acc not booted`);
  printTable([
    [
      "acc list --json (median of 5, whole process)",
      `${ms(median(times))} (target < 200 ms at 10000)`,
    ],
    ["acc list --json peak RSS", `${(peakKb / 1024).toFixed(0)} MB`],
  ]);
} finally {
  await acc.cleanup();
}
