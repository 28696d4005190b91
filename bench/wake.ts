// bench/wake: the first request to a stopped hello instance through acc's nginx (nginx tries
// the port, is refused, hands the request to the waker, which starts the instance and passes
// the request on), against the same app booted by hand and polled like acc polls it. The
// difference is what acc adds to a wake. Also prints the start as acc records it (start event),
// and the cgroup's cost: a second home with cgroups = off is woken in turn, in the same run.
// Usage: node dist/bench/wake.js [--runs 20] [--inherit-env]
// By default acc is booted without the shell's NODE_* variables (see dropNodeEnv);
// --inherit-env keeps them, as a sysadmin's `acc boot` from a shell would.
import path from "node:path";
import { openSqliteStore } from "../src/store/open.js";
import { bootHelloByHand } from "./by-hand.js";
import { createAccHome } from "../test/harness/acc.js";
import { makeTempDir, removeDir } from "../test/harness/common.js";
import {
  argFlag,
  argValue,
  dropNodeEnv,
  machineNote,
  median,
  ms,
  printTable,
  spread,
  timedGet,
} from "./stats.js";

const runs = argValue("runs", 20);
const inheritEnv = argFlag("inherit-env");
const name = "wake";
// Instances' users are the machine's: the second home's instance needs another name.
const looseName = "cgwakeoff";

/** Stops the instance, then times one GET through nginx until the app's whole answer. */
async function wakeOnce(
  acc: Awaited<ReturnType<typeof createAccHome>>,
  name = "wake",
): Promise<number> {
  await acc.ok(["stop", name]);
  const answer = await timedGet(acc.httpPort, `${name}.localhost`, { timeoutMs: 60_000 });
  // The app's own page, not a waiting or error page from acc or nginx.
  if (answer.status !== 200 || !answer.body.includes(`from ${name}</h1>`)) {
    throw new Error(
      `wake answered ${answer.status} ${answer.error ?? ""}: ${answer.body.slice(0, 200)}`,
    );
  }
  return answer.ms;
}

const machine = machineNote();
const acc = await createAccHome();
const dataDir = await makeTempDir("acc-bench-data-");
const dropped = inheritEnv ? [] : dropNodeEnv(acc.env);
const loose = await createAccHome({ env: { ACC_CGROUPS: "off" } });
if (!inheritEnv) dropNodeEnv(loose.env);
try {
  await acc.ok(["boot"]);
  await acc.ok(["create", "hello", "--name", name]);
  await loose.ok(["boot"]);
  await loose.ok(["create", "hello", "--name", looseName]);
  await wakeOnce(loose, looseName);
  // The first wake after boot also pays for acc server's cold code paths: shown, not counted.
  const firstWake = await wakeOnce(acc);
  const firstByHand = (await bootHelloByHand(dataDir)).healthy;
  const wake: number[] = [];
  const byHand: number[] = [];
  const firstAnswer: number[] = [];
  const difference: number[] = [];
  const net: number[] = [];
  const looseWake: number[] = [];
  for (let i = 0; i < runs; i++) {
    looseWake.push(await wakeOnce(loose, looseName));
    const w = await wakeOnce(acc);
    const b = await bootHelloByHand(dataDir);
    wake.push(w);
    byHand.push(b.healthy);
    firstAnswer.push(b.firstAnswer);
    difference.push(w - b.healthy);
    net.push(w - b.healthy - b.firstAnswer);
  }
  const startsOf = async (home: string, instance: string): Promise<number[]> => {
    const store = openSqliteStore(path.join(home, "state.db"));
    const events = await store.listEvents({ instance, limit: 100_000 });
    await store.close();
    return (
      events
        .filter((e) => e.action === "start" && e.cause === "wake" && e.outcome === "ok")
        .map((e) => e.durationMs ?? NaN)
        // The warm-up wake is the first one.
        .slice(1)
    );
  };
  const inside = await startsOf(acc.home, name);
  const insideLoose = await startsOf(loose.home, looseName);
  if (inside.length !== runs)
    throw new Error(`expected ${runs} wake start events, found ${inside.length}`);

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
  printTable([
    ["wake: stopped -> 200 from the app", spread(wake)],
    ["same app booted by hand (spawn -> healthy)", spread(byHand)],
    ["  its first GET / then, straight to its port", spread(firstAnswer)],
    [
      "acc's wake overhead (wake - by hand, per run)",
      `${spread(difference)} (target <= 10 ms median, <= 30 ms p99)`,
    ],
    ["  medians subtracted", ms(median(wake) - median(byHand))],
    ["  less the app's own first answer, per run", spread(net)],
    ["start inside acc (start event: call to healthy)", spread(inside)],
    ["  start event - by hand (medians)", ms(median(inside) - median(byHand))],
    ["wake, home with cgroups = off", spread(looseWake)],
    ["start inside acc, cgroups = off (start event)", spread(insideLoose)],
    [
      "the cgroup's cost (start events, medians)",
      `${ms(median(inside) - median(insideLoose))} (target <= 2 ms)`,
    ],
    ["the cgroup's cost (wakes, medians)", ms(median(wake) - median(looseWake))],
    ["first wake after boot (not counted)", `${ms(firstWake)} (by hand ${ms(firstByHand)})`],
  ]);
} finally {
  await loose.cleanup();
  await acc.cleanup();
  await removeDir(dataDir);
}
