import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { promisify } from "node:util";
import { homePaths } from "../core/paths.js";
import { INSTANCE_STATES } from "../core/states.js";
import { openSqliteStore } from "../store/open.js";
import type { NewEvent, Store } from "../store/store.js";
import type { AccContext } from "./context.js";
import { boundedLabel, createMetrics, type Metrics } from "./metrics.js";
import { observeEvents } from "./observe-events.js";

const NOW = "2026-12-02T12:00:00.000Z";

interface Harness {
  ctx: AccContext;
  metrics: Metrics;
  /** Records an event the way services do: through ctx.store, which the metrics observe. */
  record(event: Partial<NewEvent> & Pick<NewEvent, "action">): Promise<void>;
  /** Adds an instance row in the given state. */
  instance(name: string, model: string, state?: "running" | "stopped" | "failed"): Promise<void>;
}

async function harness(
  t: TestContext,
  options: { instanceMemory?: boolean; processes?: unknown } = {},
): Promise<Harness> {
  const home = await mkdtemp(path.join(os.tmpdir(), "acc-metrics-"));
  const store: Store = openSqliteStore(path.join(home, "state.db"));
  await store.migrate();
  t.after(async () => {
    await store.close();
    await rm(home, { recursive: true, force: true });
  });
  await writeFile(path.join(home, "package.json"), '{ "name": "acc", "version": "9.8.7" }\n');
  const ctx = {
    home,
    paths: homePaths(home),
    store,
    accRoot: home,
    now: () => new Date(NOW),
    processes: options.processes,
    cache: { cgroups: Promise.resolve({ enabled: false, config: "off" }) },
  } as unknown as AccContext;
  const metrics = createMetrics(ctx, { instanceMemory: options.instanceMemory ?? false });
  observeEvents(ctx, metrics.onEvent);
  return {
    ctx,
    metrics,
    record: (event) =>
      ctx.store.addEvent(
        {
          instance: "a",
          cause: null,
          outcome: "ok",
          durationMs: null,
          message: null,
          ...event,
        },
        NOW,
      ),
    async instance(name, model, state = "stopped") {
      await store.insertInstance(
        {
          name,
          model,
          modelVersion: "1",
          modelHash: "h",
          hosts: [],
          params: {},
          idleTimeout: undefined,
          portRange: { min: 20000, max: 20099 },
        },
        NOW,
      );
      await store.updateInstance(name, { state }, NOW);
    },
  };
}

/** The value of one sample in Prometheus text, e.g. sample(text, 'acc_instances{state="running"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("labels come from fixed sets: anything else is other, a detail after ':' is dropped", () => {
  const known = ["cli", "token", "wake"];
  assert.equal(boundedLabel("wake", known), "wake");
  assert.equal(boundedLabel("token:deploy-bot", known), "token");
  assert.equal(boundedLabel("acc backup", known), "other");
  assert.equal(boundedLabel(null, known), "other");
  assert.equal(boundedLabel('x"}\n', known), "other");
});

test("every metric is there from the start, in its own registry", async (t) => {
  const h = await harness(t);
  const text = await h.metrics.render();
  for (const state of INSTANCE_STATES)
    assert.equal(sample(text, `acc_instances{state="${state}"}`), 0, state);
  assert.equal(sample(text, "acc_requests_held"), 0);
  assert.equal(sample(text, 'acc_starts_total{cause="wake",outcome="ok"}'), 0);
  assert.equal(sample(text, 'acc_stops_total{cause="idle"}'), 0);
  assert.equal(sample(text, "acc_backup_last_success_timestamp_seconds"), 0, "no backup yet");
  assert.equal(sample(text, `acc_build_info{version="9.8.7",node="${process.version}"}`), 1);
  assert.match(text, /^# TYPE acc_wake_duration_seconds histogram$/m);
  assert.match(text, /^# TYPE acc_wakes_total counter$/m);
  assert.doesNotMatch(text, /acc_instance_memory_bytes/, "opt-in only");
  assert.doesNotMatch(text, /^process_|^nodejs_/m, "not prom-client's global default metrics");
  assert.match(h.metrics.contentType, /^text\/plain; version=0\.0\.4/);

  // A second server in the same process (tests do that) gets its own counts.
  const other = createMetrics(h.ctx, { instanceMemory: false });
  await h.record({ action: "stop", cause: "idle" });
  assert.equal(sample(await other.render(), 'acc_stops_total{cause="idle"}'), 0);
  assert.equal(sample(await h.metrics.render(), 'acc_stops_total{cause="idle"}'), 1);
});

test("instances by state are read from the store at each scrape", async (t) => {
  const h = await harness(t);
  await h.instance("a", "hello", "running");
  await h.instance("b", "hello", "running");
  await h.instance("c", "echo", "failed");
  let text = await h.metrics.render();
  assert.equal(sample(text, 'acc_instances{state="running"}'), 2);
  assert.equal(sample(text, 'acc_instances{state="failed"}'), 1);
  assert.equal(sample(text, 'acc_instances{state="stopped"}'), 0);
  await h.ctx.store.updateInstance("b", { state: "stopped" }, NOW);
  text = await h.metrics.render();
  assert.equal(sample(text, 'acc_instances{state="running"}'), 1);
  assert.equal(sample(text, 'acc_instances{state="stopped"}'), 1);
});

test("recorded events move the counters; a wake is a start with cause wake", async (t) => {
  const h = await harness(t);
  await h.instance("a", "hello");
  await h.instance("b", "echo");
  await h.record({ action: "start", cause: "wake", outcome: "ok", durationMs: 1500 });
  await h.record({ action: "start", cause: "wake", outcome: "ok", durationMs: 40 });
  await h.record({
    instance: "b",
    action: "start",
    cause: "wake",
    outcome: "failed",
    durationMs: 65_000,
  });
  await h.record({ action: "start", cause: "cli", outcome: "ok", durationMs: 900 });
  await h.record({ action: "start", cause: "token:ci-bot", outcome: "ok", durationMs: 900 });
  await h.record({ action: "start", cause: "something new", outcome: "odd", durationMs: 1 });
  await h.record({ action: "stop", cause: "idle" });
  await h.record({ action: "stop", cause: "evict" });
  await h.record({ action: "stop", cause: "evict" });
  await h.record({ action: "crash", cause: "oom", outcome: "failed" });
  await h.record({ action: "set", cause: "cli" });
  const text = await h.metrics.render();

  assert.equal(sample(text, 'acc_wakes_total{model="hello",outcome="ok"}'), 2);
  assert.equal(sample(text, 'acc_wakes_total{model="echo",outcome="failed"}'), 1);
  assert.equal(sample(text, 'acc_wake_duration_seconds_count{model="hello",outcome="ok"}'), 2);
  assert.equal(sample(text, 'acc_wake_duration_seconds_sum{model="hello",outcome="ok"}'), 1.54);
  assert.equal(
    sample(text, 'acc_wake_duration_seconds_bucket{le="0.05",model="hello",outcome="ok"}'),
    1,
  );
  assert.equal(
    sample(text, 'acc_wake_duration_seconds_bucket{le="2",model="hello",outcome="ok"}'),
    2,
  );
  assert.equal(
    sample(text, 'acc_wake_duration_seconds_bucket{le="60",model="echo",outcome="failed"}'),
    0,
  );
  assert.equal(
    sample(text, 'acc_wake_duration_seconds_bucket{le="120",model="echo",outcome="failed"}'),
    1,
  );

  assert.equal(sample(text, 'acc_starts_total{cause="wake",outcome="ok"}'), 2);
  assert.equal(sample(text, 'acc_starts_total{cause="wake",outcome="failed"}'), 1);
  assert.equal(sample(text, 'acc_starts_total{cause="cli",outcome="ok"}'), 1);
  assert.equal(sample(text, 'acc_starts_total{cause="token",outcome="ok"}'), 1);
  assert.equal(sample(text, 'acc_starts_total{cause="other",outcome="other"}'), 1);
  assert.equal(sample(text, 'acc_stops_total{cause="idle"}'), 1);
  assert.equal(sample(text, 'acc_stops_total{cause="evict"}'), 2);
  assert.equal(sample(text, 'acc_crashes_total{cause="oom"}'), 1);
  assert.doesNotMatch(text, /something new|ci-bot|odd/, "no unbounded label value");
});

test("the last successful backup's time comes from the store's events", async (t) => {
  const h = await harness(t);
  // Recorded by another process (acc backup run alone): the store has it, the observer did not.
  await h.ctx.store.addEvent(
    {
      instance: "a",
      action: "backup",
      cause: "acc backup",
      outcome: "ok",
      durationMs: 10,
      message: null,
      time: "2026-12-01T03:00:00.000Z",
    },
    NOW,
  );
  await h.record({ action: "backup", outcome: "failed", time: "2026-12-02T03:00:00.000Z" });
  await h.record({ action: "start", cause: "wake", time: "2026-12-02T04:00:00.000Z" });
  assert.equal(
    sample(await h.metrics.render(), "acc_backup_last_success_timestamp_seconds"),
    Date.parse("2026-12-01T03:00:00.000Z") / 1000,
  );
});

test("held requests go up and down", async (t) => {
  const h = await harness(t);
  h.metrics.heldRequests.inc();
  h.metrics.heldRequests.inc();
  h.metrics.heldRequests.dec();
  assert.equal(sample(await h.metrics.render(), "acc_requests_held"), 1);
});

test("per-instance memory, when asked for: running instances only", async (t) => {
  const processes = {
    isRunning: () => Promise.resolve(true),
    allProgramStates: () =>
      Promise.resolve(
        new Map([
          ["up", { state: "RUNNING", pid: process.pid }],
          ["down", { state: "STOPPED", pid: 0 }],
        ]),
      ),
  };
  const h = await harness(t, { instanceMemory: true, processes });
  const text = await h.metrics.render();
  const bytes = sample(text, 'acc_instance_memory_bytes{instance="up"}');
  assert.ok(bytes !== undefined && bytes > 1024 * 1024, `this process's memory: ${bytes}`);
  assert.equal(sample(text, 'acc_instance_memory_bytes{instance="down"}'), undefined);
});

test("each instance's certificate expiry, from its file; gone with the file", async (t) => {
  const h = await harness(t);
  const dir = h.ctx.paths.tlsInstances;
  await mkdir(dir, { recursive: true });
  await promisify(execFile)(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      path.join(dir, "crm.key"),
      "-out",
      path.join(dir, "crm.crt"),
      "-days",
      "10",
      "-subj",
      "/CN=crm.example.test",
      "-addext",
      "subjectAltName=DNS:crm.example.test",
    ],
    { timeout: 30_000 },
  );
  const page = await h.metrics.render();
  const found = /acc_certificate_expiry_timestamp_seconds\{instance="crm"\} (\d+)/.exec(page);
  assert.ok(found, page);
  const days = (Number(found[1]) * 1000 - Date.now()) / 86400_000;
  assert.ok(days > 9 && days <= 10, String(days));
  await rm(path.join(dir, "crm.crt"));
  assert.doesNotMatch(await h.metrics.render(), /acc_certificate_expiry_timestamp_seconds\{/);
});
