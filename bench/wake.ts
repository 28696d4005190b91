// bench/wake: the first request to a stopped hello instance through acc's nginx (nginx tries
// the port, is refused, hands the request to the waker, which starts the instance and passes
// the request on), against the same app booted by hand, and against Phusion Passenger
// Standalone waking the same app (when the Debian package `passenger` is installed), all in
// the same run, run after run. Then where each millisecond of acc's wake goes: acc is booted
// with ACC_TRACE (src/lib/trace.ts), and each phase is timed from the trace's marks (acc
// server's, acc-launch's and this client's, one clock). Also the launcher chain alone (a no-op
// app), and the cgroup's cost: a second home with cgroups = off is woken in turn.
// Usage: node dist/bench/wake.js [--runs 20] [--inherit-env] [--no-passenger]
// By default acc is booted without the shell's NODE_* variables (see dropNodeEnv);
// --inherit-env keeps them, as a sysadmin's `acc boot` from a shell would.
// Passenger: `apt-get install passenger` (not needed by npm test).
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { instancePaths } from "../src/core/paths.js";
import { openSqliteStore } from "../src/store/open.js";
import { bootHelloByHand, bootHelloToFirstAnswer, HELLO_DIR } from "./by-hand.js";
import { passengerInstalled, startPassengerHello, type PassengerHello } from "./passenger.js";
import { clearTrace, readTrace, wakePhases, WAKE_PHASES } from "./wake-trace.js";
import { ACC_ROOT, createAccHome, type AccHome } from "../test/harness/acc.js";
import { makeTempDir, removeDir } from "../test/harness/common.js";
import {
  argFlag,
  argValue,
  dropNodeEnv,
  machineNote,
  median,
  ms,
  percentile,
  printTable,
  spread,
  timedGet,
  type TimedAnswer,
} from "./stats.js";

const runs = argValue("runs", 20);
const inheritEnv = argFlag("inherit-env");
const withPassenger = !argFlag("no-passenger") && (await passengerInstalled());
const name = "wake";
// Instances' users are the machine's: the second home's instance needs another name.
const looseName = "cgwakeoff";

/**
 * Stops the instance, then times one GET through nginx until the app's whole answer;
 * `stopped` runs in between (the trace emptied, so that it holds this wake's marks only).
 */
async function wakeOnce(
  acc: AccHome,
  name = "wake",
  stopped?: () => Promise<void>,
): Promise<TimedAnswer> {
  await acc.ok(["stop", name]);
  await stopped?.();
  const answer = await timedGet(acc.httpPort, `${name}.localhost`, { timeoutMs: 60_000 });
  // The app's own page, not a waiting or error page from acc or nginx.
  if (answer.status !== 200 || !answer.body.includes(`from ${name}</h1>`)) {
    throw new Error(
      `wake answered ${answer.status} ${answer.error ?? ""}: ${answer.body.slice(0, 200)}`,
    );
  }
  return answer;
}

/** The time of one run of `argv` to its exit (ms). */
function timedRun(argv: readonly string[]): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] ?? "", argv.slice(1), { stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", () => resolve(performance.now() - started));
  });
}

async function timedRuns(argv: readonly string[], count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) times.push(await timedRun(argv));
  return times;
}

/**
 * The launcher chain with a no-op app: acc-launch with the instance's own spec (cgroups,
 * environment file, drop to its user, sandbox) but /bin/true as the command and no port,
 * with and without the sandbox; and perl alone compiling acc-launch.
 */
async function launcherChain(
  acc: AccHome,
  dir: string,
): Promise<{ perl: number[]; bare: number[]; sandboxed: number[]; sandbox: boolean }> {
  const spec = await readFile(instancePaths(acc.home, name).launch, "utf8");
  const lines = spec
    .split("\n")
    .filter((l) => !/^(port|listen_pid|keeper) /.test(l))
    .map((l) => (l.startsWith("run ") ? "run /bin/true" : l));
  // The spec's path names the instance in acc-launch's trace: a folder of the bench's own.
  const withSandbox = path.join(dir, "sandboxed", "launch");
  const bare = path.join(dir, "bare", "launch");
  await writeFile(withSandbox, lines.join("\n"), { mode: 0o600 });
  await writeFile(bare, lines.filter((l) => !l.startsWith("sandbox ")).join("\n"), {
    mode: 0o600,
  });
  const launcher = path.join(ACC_ROOT, "libexec", "acc-launch");
  const count = Math.max(10, runs);
  return {
    perl: await timedRuns(["/usr/bin/perl", "-c", launcher], count),
    bare: await timedRuns(["/usr/bin/perl", launcher, bare, "run"], count),
    sandboxed: await timedRuns(["/usr/bin/perl", launcher, withSandbox, "run"], count),
    sandbox: lines.some((l) => l.startsWith("sandbox ")),
  };
}

const ratio = (a: number, b: number): string => `x${(a / b).toFixed(2)}`;

const machine = machineNote();
const work = await makeTempDir("acc-bench-wake-");
const traceFile = path.join(work, "trace");
const dataDir = path.join(work, "data");
const acc = await createAccHome({ env: { ACC_TRACE: traceFile } });
const dropped = inheritEnv ? [] : dropNodeEnv(acc.env);
const loose = await createAccHome({ env: { ACC_CGROUPS: "off" } });
if (!inheritEnv) dropNodeEnv(loose.env);
let passenger: PassengerHello | undefined;
try {
  for (const sub of ["data", "sandboxed", "bare"]) await mkdir(path.join(work, sub));
  await acc.ok(["boot"]);
  await acc.ok(["create", "hello", "--name", name]);
  await loose.ok(["boot"]);
  await loose.ok(["create", "hello", "--name", looseName]);
  if (withPassenger) passenger = await startPassengerHello(HELLO_DIR);
  await wakeOnce(loose, looseName);
  // The first wake after boot also pays for acc server's cold code paths: shown, not counted.
  const firstWake = (await wakeOnce(acc)).ms;
  const firstByHand = await bootHelloToFirstAnswer(dataDir);
  if (passenger) await passenger.wake();

  const wake: number[] = [];
  const toFirstAnswer: number[] = [];
  const byHandHealthy: number[] = [];
  const byHandThenGet: number[] = [];
  const passengerWake: number[] = [];
  const looseWake: number[] = [];
  const phases = new Map<string, number[]>(WAKE_PHASES.map((p) => [p.label, []]));
  const refused: number[] = [];
  for (let i = 0; i < runs; i++) {
    looseWake.push((await wakeOnce(loose, looseName)).ms);
    const answer = await wakeOnce(acc, name, () => clearTrace(traceFile));
    const received = answer.startedAt + answer.ms;
    // acc server marks the health check's end, the checks and the start's event after the answer.
    let marks = await readTrace(traceFile);
    for (let wait = 0; wait < 100 && !marks.some((m) => m.point === "event"); wait++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      marks = await readTrace(traceFile);
    }
    const one = wakePhases(marks, name, answer.startedAt, received);
    for (const [label, value] of one.phases) phases.get(label)?.push(value);
    refused.push(one.refused);
    wake.push(answer.ms);
    toFirstAnswer.push(await bootHelloToFirstAnswer(dataDir));
    const b = await bootHelloByHand(dataDir);
    byHandHealthy.push(b.healthy);
    byHandThenGet.push(b.firstAnswer);
    if (passenger) passengerWake.push((await passenger.wake()).ms);
  }
  const chain = await launcherChain(acc, work);
  const startsOf = async (home: string, instance: string): Promise<number[]> => {
    const store = openSqliteStore(path.join(home, "state.db"));
    const events = await store.listEvents({ instance, limit: 100_000 });
    await store.close();
    return events
      .filter((e) => e.action === "start" && e.cause === "wake" && e.outcome === "ok")
      .map((e) => e.durationMs ?? NaN);
  };
  const inside = await startsOf(acc.home, name);
  const insideLoose = await startsOf(loose.home, looseName);

  console.log(
    `bench/wake: hello, ${runs} wakes through nginx (stop with acc stop, then one GET /), median and p99` +
      (runs < 100 ? ` (with ${runs} runs the p99 is the slowest run)` : ""),
  );
  console.log(
    inheritEnv
      ? "acc booted with this shell's whole environment (--inherit-env), which its instances inherit"
      : `acc booted without ${dropped.length > 0 ? dropped.join(", ") : "NODE_* variables (none were set)"}; the app by hand gets PORT, HOST, DATA_DIR only`,
  );
  console.log(`machine: ${machine}`);
  const floor = median(toFirstAnswer);
  printTable([
    ["acc's wake: stopped -> the app's 200, through nginx", spread(wake)],
    ["by hand: spawn -> the app's first answer to GET /", spread(toFirstAnswer)],
    [
      "acc / by hand, medians",
      `${ratio(median(wake), floor)} (target <= x1.10), ${ms(median(wake) - floor)} over`,
    ],
    [
      "acc / by hand, p99",
      `${ratio(percentile(wake, 99), percentile(toFirstAnswer, 99))} (target <= x1.25)`,
    ],
    ...(passenger
      ? ([
          [`Passenger's wake (${passenger.version}, builtin engine)`, spread(passengerWake)],
          [
            "acc / Passenger, medians",
            `${ratio(median(wake), median(passengerWake))} (target <= x0.35)`,
          ],
          ["Passenger / by hand, medians", ratio(median(passengerWake), floor)],
        ] as [string, string][])
      : ([["Passenger", "not installed (apt-get install passenger), or --no-passenger"]] as [
          string,
          string,
        ][])),
    ["by hand, polled like acc: spawn -> healthy", spread(byHandHealthy)],
    ["  then its first GET / straight to its port", spread(byHandThenGet)],
    ["first wake after boot (not counted)", `${ms(firstWake)} (by hand ${ms(firstByHand)})`],
  ]);

  console.log("\nwhere acc's wake goes (ACC_TRACE marks; * = on the held request's path):");
  const rows: [string, string][] = [];
  let criticalSum = 0;
  for (const phase of WAKE_PHASES) {
    const values = phases.get(phase.label) ?? [];
    if (phase.critical) criticalSum += median(values);
    rows.push([`${phase.critical ? "*" : " "} ${phase.label}`, spread(values)]);
  }
  rows.push(
    ["  sum of the * medians", `${ms(criticalSum)} (the wake's median: ${ms(median(wake))})`],
    ["  early sends refused before acc-launch's socket listened", spread(refused)],
  );
  printTable(rows);
  console.log(
    "store writes: SQLite in WAL mode with synchronous = NORMAL: a commit appends to the WAL " +
      "without fsync (the checkpoint syncs); none of them is on the held request's path but the lease's and the state's.",
  );

  console.log("\nthe launcher chain alone (a no-op app, /bin/true), spawn to exit:");
  printTable([
    ["perl compiling acc-launch (perl -c)", spread(chain.perl)],
    ["acc-launch: cgroup, env, drop, exec, no sandbox", spread(chain.bare)],
    [
      chain.sandbox ? "acc-launch with the sandbox (bubblewrap)" : "(no sandbox on this machine)",
      spread(chain.sandboxed),
    ],
    ["  the sandbox's cost (medians)", ms(median(chain.sandboxed) - median(chain.bare))],
  ]);

  console.log("\nthe start as acc records it, and the cgroup's cost:");
  printTable([
    ["start inside acc (start event: call to healthy)", spread(inside.slice(1))],
    ["wake, home with cgroups = off", spread(looseWake)],
    ["start inside acc, cgroups = off (start event)", spread(insideLoose.slice(1))],
    [
      "the cgroup's cost (start events, medians)",
      `${ms(median(inside.slice(1)) - median(insideLoose.slice(1)))} (target <= 2 ms)`,
    ],
    ["the cgroup's cost (wakes, medians)", ms(median(wake) - median(looseWake))],
  ]);
} finally {
  await passenger?.stop();
  await loose.cleanup();
  await acc.cleanup();
  await removeDir(work);
}
