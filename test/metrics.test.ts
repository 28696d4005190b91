import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { homePaths } from "../src/core/paths.js";
import { createAccHome } from "./harness/acc.js";

/** GET /metrics from acc server: its local socket, or the admin socket (as nginx) with a token. */
function scrape(
  home: string,
  options: { token?: string } = {},
): Promise<{ status: number; body: string }> {
  const paths = homePaths(home);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: options.token === undefined ? paths.apiSocket : paths.adminSocket,
        path: "/metrics",
        headers: {
          "x-real-ip": "127.0.0.9",
          ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
        },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function metricsText(home: string): Promise<string> {
  const answer = await scrape(home);
  assert.equal(answer.status, 200, answer.body);
  return answer.body;
}

/** The value of one sample in Prometheus text, e.g. sample(text, 'acc_instances{state="running"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Scrapes until the series has the value (a start still under way ends), or fails after 30 s. */
async function scrapeUntil(home: string, series: string, value: number): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = await metricsText(home);
    if (sample(text, series) === value) return text;
    if (Date.now() > deadline) assert.fail(`${series} is not ${value} after 30 s:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test(
  "GET /metrics counts a wake through nginx and reads the instances from the store; read tokens only",
  { timeout: 180_000 },
  async (t) => {
    const acc = await createAccHome({
      env: { ACC_MONITOR_INTERVAL: "1h", ACC_METRICS_INSTANCE_MEMORY: "true" },
    });
    t.after(() => acc.cleanup());
    await acc.ok(["boot"]);
    await acc.ok(["create", "hello", "--name", "mt-w1", "--no-start"]);

    let text = await metricsText(acc.home);
    assert.equal(sample(text, 'acc_instances{state="stopped"}'), 1);
    assert.equal(sample(text, 'acc_instances{state="running"}'), 0);
    assert.equal(sample(text, 'acc_wakes_total{model="hello",outcome="ok"}'), undefined);
    assert.match(text, /^acc_build_info\{/m);

    const answer = await acc.request("mt-w1.localhost", { timeoutMs: 60_000 });
    assert.equal(answer.status, 200, answer.body);
    assert.match(answer.body, /mt-w1/);

    // hello takes its socket from acc: the app may answer before its health check passes, and
    // the start (its event, state running) ends after that.
    text = await scrapeUntil(acc.home, 'acc_wakes_total{model="hello",outcome="ok"}', 1);
    assert.equal(sample(text, 'acc_wake_duration_seconds_count{model="hello",outcome="ok"}'), 1);
    const seconds = sample(text, 'acc_wake_duration_seconds_sum{model="hello",outcome="ok"}');
    assert.ok(seconds !== undefined && seconds > 0 && seconds < 60, `wake took ${seconds} s`);
    assert.equal(sample(text, 'acc_starts_total{cause="wake",outcome="ok"}'), 1);
    assert.equal(sample(text, 'acc_instances{state="running"}'), 1);
    assert.equal(sample(text, 'acc_instances{state="stopped"}'), 0);
    assert.equal(sample(text, "acc_requests_held"), 0, "the held request has left");
    const memory = sample(text, 'acc_instance_memory_bytes{instance="mt-w1"}');
    assert.ok(memory !== undefined && memory > 1024 * 1024, `memory ${memory}`);

    // A stop through the API (the CLI is its client) counts; a second request wakes it again.
    await acc.ok(["stop", "mt-w1"]);
    assert.equal((await acc.request("mt-w1.localhost", { timeoutMs: 60_000 })).status, 200);
    text = await scrapeUntil(acc.home, 'acc_wakes_total{model="hello",outcome="ok"}', 2);
    assert.equal(sample(text, 'acc_stops_total{cause="cli"}'), 1);
    assert.equal(sample(text, 'acc_wake_duration_seconds_count{model="hello",outcome="ok"}'), 2);
    assert.equal(sample(text, 'acc_instances{state="running"}'), 1);
    assert.equal(sample(text, "acc_backup_last_success_timestamp_seconds"), 0);

    const before = Date.now() / 1000;
    await acc.ok(["backup", "mt-w1"]);
    const backedUp = sample(
      await metricsText(acc.home),
      "acc_backup_last_success_timestamp_seconds",
    );
    assert.ok(
      backedUp !== undefined && backedUp >= before - 1 && backedUp <= Date.now() / 1000 + 1,
      `last backup at ${backedUp}`,
    );

    // Through nginx's socket: a read token may scrape; none, or an instance's, may not.
    const token = (kind: string): Promise<string> =>
      acc
        .ok(["token", "create", "--scope", kind, "--json"])
        .then((out) => (JSON.parse(out) as { token: string }).token);
    const read = await scrape(acc.home, { token: await token("read") });
    assert.equal(read.status, 200);
    assert.match(read.body, /acc_instances\{state="running"\} 1/);
    assert.equal((await scrape(acc.home, { token: "acc_000000000000_nope" })).status, 401);
    assert.equal((await scrape(acc.home, { token: await token("instance:mt-w1") })).status, 403);
  },
);
