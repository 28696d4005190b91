import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { assembleServer } from "../src/server/main.js";
import { listenOnSocket } from "../src/server/listen.js";
import { stopInstance } from "../src/services/instances.js";
import type { Metrics } from "../src/services/metrics.js";
import { openContext } from "../src/services/open.js";
import { createAccHome } from "./harness/acc.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const ACC_ROOT = path.resolve(here, "../..");

/** The value of one sample in Prometheus text, e.g. sample(text, 'acc_instances{state="running"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Scrapes until the series has the value (a start still under way ends), or fails after 30 s. */
async function scrapeUntil(metrics: Metrics, series: string, value: number): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = await metrics.render();
    if (sample(text, series) === value) return text;
    if (Date.now() > deadline) assert.fail(`${series} is not ${value} after 30 s:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test(
  "acc server's metrics count a wake through nginx, and read the instances from the store",
  { timeout: 180_000 },
  async (t) => {
    const acc = await createAccHome({
      env: { ACC_MONITOR_INTERVAL: "1h", ACC_METRICS_INSTANCE_MEMORY: "true" },
    });
    t.after(() => acc.cleanup());
    await acc.ok(["boot"]);
    await acc.ok(["create", "hello", "--name", "mt-w1", "--no-start"]);

    // acc server as `acc server` assembles it, in this process so that its metrics can be read
    // here (the /metrics route is not this test's): the supervised one gives it its socket.
    const ctx = await openContext({ home: acc.home, env: acc.env, accRoot: ACC_ROOT });
    t.after(() => ctx.store.close());
    await ctx.processes.stopService("acc-server");
    const logged: string[] = [];
    const { server, metrics } = assembleServer(ctx, (line) => logged.push(line));
    await listenOnSocket(server, ctx.paths.wakerSocket, 511);
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });

    let text = await metrics.render();
    assert.equal(sample(text, 'acc_instances{state="stopped"}'), 1);
    assert.equal(sample(text, 'acc_instances{state="running"}'), 0);
    assert.equal(sample(text, 'acc_wakes_total{model="hello",outcome="ok"}'), undefined);

    const answer = await acc.request("mt-w1.localhost", { timeoutMs: 60_000 });
    assert.equal(answer.status, 200, `${answer.body}\n${logged.join("\n")}`);
    assert.match(answer.body, /mt-w1/);

    // hello takes its socket from acc: the app may answer before its health check passes, and
    // the start (its event, state running) ends after that.
    text = await scrapeUntil(metrics, 'acc_wakes_total{model="hello",outcome="ok"}', 1);
    assert.equal(sample(text, 'acc_wake_duration_seconds_count{model="hello",outcome="ok"}'), 1);
    const seconds = sample(text, 'acc_wake_duration_seconds_sum{model="hello",outcome="ok"}');
    assert.ok(seconds !== undefined && seconds > 0 && seconds < 60, `wake took ${seconds} s`);
    assert.equal(sample(text, 'acc_starts_total{cause="wake",outcome="ok"}'), 1);
    assert.equal(sample(text, 'acc_instances{state="running"}'), 1);
    assert.equal(sample(text, 'acc_instances{state="stopped"}'), 0);
    assert.equal(sample(text, "acc_requests_held"), 0, "the held request has left");
    const memory = sample(text, 'acc_instance_memory_bytes{instance="mt-w1"}');
    assert.ok(memory !== undefined && memory > 1024 * 1024, `memory ${memory}`);

    // A stop made through the server's context counts; a second request wakes it again.
    await stopInstance(ctx, "mt-w1");
    assert.equal((await acc.request("mt-w1.localhost", { timeoutMs: 60_000 })).status, 200);
    text = await scrapeUntil(metrics, 'acc_wakes_total{model="hello",outcome="ok"}', 2);
    assert.equal(sample(text, 'acc_stops_total{cause="cli"}'), 1);
    assert.equal(sample(text, 'acc_wake_duration_seconds_count{model="hello",outcome="ok"}'), 2);
    assert.equal(sample(text, 'acc_instances{state="running"}'), 1);
    assert.equal(sample(text, "acc_backup_last_success_timestamp_seconds"), 0);

    // A backup by the CLI (another process) is read from the store at the next scrape.
    const before = Date.now() / 1000;
    await acc.ok(["backup", "mt-w1"]);
    const backedUp = sample(await metrics.render(), "acc_backup_last_success_timestamp_seconds");
    assert.ok(
      backedUp !== undefined && backedUp >= before - 1 && backedUp <= Date.now() / 1000 + 1,
      `last backup at ${backedUp}`,
    );
  },
);
