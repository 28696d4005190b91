// bench/lifecycle: median create, start (to healthy), stop and destroy times of a hello
// instance through the CLI, and acc's own start overhead: the start measured inside acc
// (start call to first healthy answer, from the start event) minus the same app's boot
// when started by hand and polled the same way. Then two instances, one in its bubblewrap
// sandbox and one without (sandbox = off), are started in turn: the sandbox's cost is the
// difference of their two medians, in one run. The same for cgroups: an instance in its own
// cgroup and one without (cgroups = off), started in turn.
// Usage: node dist/bench/lifecycle.js [--runs 20]
import { execFile } from "node:child_process";
import path from "node:path";
import { openSqliteStore } from "../src/store/open.js";
import { bootHelloByHand } from "./by-hand.js";
import { ACC_BIN, createAccHome } from "../test/harness/acc.js";
import { makeTempDir, removeDir } from "../test/harness/common.js";
import { argValue, median, ms, printTable } from "./stats.js";

const runs = argValue("runs", 20);

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

const acc = await createAccHome();
const dataDir = await makeTempDir("acc-bench-data-");

/** acc ARGS, with the sandbox (and cgroups) on (auto) or off for this command. */
function accWith(
  sandbox: "auto" | "off",
  args: string[],
  cgroups: "auto" | "off" = "auto",
): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [ACC_BIN, ...args],
      { env: { ...acc.env, ACC_SANDBOX: sandbox, ACC_CGROUPS: cgroups }, timeout: 120_000 },
      (error, _stdout, stderr) =>
        error ? reject(new Error(`acc ${args.join(" ")}: ${stderr}`)) : resolve(),
    );
  });
}

try {
  await acc.ok(["boot"]);
  const create: number[] = [];
  const start: number[] = [];
  const stop: number[] = [];
  const destroy: number[] = [];
  const byHand: number[] = [];
  const fresh = new Set<string>();
  for (let i = 0; i < runs; i++) {
    const name = `bench${i}`;
    fresh.add(name);
    create.push((await timed(() => acc.ok(["create", "hello", "--name", name, "--no-start"])))[1]);
    start.push((await timed(() => acc.ok(["start", name])))[1]);
    stop.push((await timed(() => acc.ok(["stop", name])))[1]);
    destroy.push((await timed(() => acc.ok(["destroy", name, "--yes", "--no-backup"])))[1]);
    byHand.push((await bootHelloByHand(dataDir)).healthy);
  }
  // The sandbox's cost: two instances, one in its sandbox and one not (sandbox = off when it
  // was created), started and stopped in turn, so both see the same machine.
  await accWith("auto", ["create", "hello", "--name", "boxed", "--no-start"]);
  await accWith("off", ["create", "hello", "--name", "bare", "--no-start"]);
  for (let i = 0; i < runs; i++) {
    for (const name of i % 2 === 0 ? ["boxed", "bare"] : ["bare", "boxed"]) {
      await acc.ok(["start", name]);
      await acc.ok(["stop", name]);
    }
    byHand.push((await bootHelloByHand(dataDir)).healthy);
  }
  // The cgroup's cost: both sandboxed, one in its own cgroup, one made and run with cgroups = off.
  await accWith("auto", ["create", "hello", "--name", "cgcaged", "--no-start"]);
  await accWith("auto", ["create", "hello", "--name", "cgloose", "--no-start"], "off");
  for (let i = 0; i < runs; i++) {
    for (const name of i % 2 === 0 ? ["cgcaged", "cgloose"] : ["cgloose", "cgcaged"]) {
      const cgroups = name === "cgcaged" ? "auto" : "off";
      await accWith("auto", ["start", name], cgroups);
      await accWith("auto", ["stop", name], cgroups);
    }
  }
  const inside = {
    fresh: [] as number[],
    boxed: [] as number[],
    bare: [] as number[],
    cgcaged: [] as number[],
    cgloose: [] as number[],
  };
  const store = openSqliteStore(path.join(acc.home, "state.db"));
  for (const event of await store.listEvents({ limit: 100_000 })) {
    if (event.action !== "start" || event.outcome !== "ok" || event.durationMs === null) continue;
    const name = event.instance ?? "";
    if (fresh.has(name)) inside.fresh.push(event.durationMs);
    else if (name === "boxed" || name === "bare" || name === "cgcaged" || name === "cgloose")
      inside[name].push(event.durationMs);
  }
  await store.close();
  console.log(
    `bench/lifecycle: hello, ${runs} runs, medians (CLI wall time includes node start-up of the acc process)`,
  );
  printTable([
    ["create --no-start (CLI)", ms(median(create))],
    ["first start to healthy (CLI)", ms(median(start))],
    ["stop (CLI)", ms(median(stop))],
    ["destroy --no-backup (CLI)", ms(median(destroy))],
    ["first start inside acc (call to healthy)", ms(median(inside.fresh))],
    ["start inside acc, sandboxed", ms(median(inside.boxed))],
    ["start inside acc, sandbox = off", ms(median(inside.bare))],
    [
      "the sandbox's cost (difference of the two)",
      `${ms(median(inside.boxed) - median(inside.bare))} (target <= 3 ms)`,
    ],
    ["start inside acc, in its own cgroup", ms(median(inside.cgcaged))],
    ["start inside acc, cgroups = off", ms(median(inside.cgloose))],
    [
      "the cgroup's cost (difference of the two)",
      `${ms(median(inside.cgcaged) - median(inside.cgloose))} (target <= 2 ms)`,
    ],
    ["same app booted by hand", ms(median(byHand))],
    [
      "acc's own start overhead (sandboxed start - by hand)",
      `${ms(median(inside.boxed) - median(byHand))} (target <= 10 ms)`,
    ],
  ]);
} finally {
  await acc.cleanup();
  await removeDir(dataDir);
}
