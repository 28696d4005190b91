import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test, type TestContext } from "node:test";
import type { AccConfig } from "../core/config.js";
import { idleMessage } from "../core/duration.js";
import type { ModelManifest } from "../core/model.js";
import { homePaths } from "../core/paths.js";
import type { InstanceState } from "../core/states.js";
import { openSqliteStore } from "../store/open.js";
import type { InstanceRecord, Store } from "../store/store.js";
import type { AccContext } from "./context.js";
import { codeDirOf } from "./model-code.js";
import {
  idleMs,
  isDue,
  mergeActivity,
  monitorPass,
  planIdleStops,
  startMonitorLoop,
} from "./monitor.js";

const NOW = Date.parse("2026-11-26T12:00:00.000Z");
const ago = (ms: number): string => new Date(NOW - ms).toISOString();
const MIN = 60_000;

function record(name: string, fields: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    name,
    model: "hello",
    modelVersion: "1.0.0",
    modelHash: "abc",
    state: "running",
    operation: null,
    port: 20000,
    hosts: [],
    params: {},
    idleTimeout: undefined,
    createdAt: ago(60 * MIN),
    updatedAt: ago(60 * MIN),
    stateChangedAt: ago(60 * MIN),
    lastActivityAt: null,
    lastError: null,
    database: null,
    ...fields,
  };
}

test("idle time: since the later of last activity and last state change", () => {
  assert.equal(idleMs(record("a", { lastActivityAt: ago(5 * MIN) }), NOW), 5 * MIN);
  assert.equal(
    idleMs(record("a", { lastActivityAt: ago(50 * MIN), stateChangedAt: ago(2 * MIN) }), NOW),
    2 * MIN,
    "a start is activity",
  );
  assert.equal(idleMs(record("a"), NOW), 60 * MIN, "never used: since it started");
  assert.equal(isDue(15 * MIN + 1, 15 * MIN), true);
  assert.equal(isDue(15 * MIN, 15 * MIN), false, "idle longer than the timeout, not as long");
  assert.equal(isDue(10_000 * MIN, null), false, "never");
  assert.equal(
    idleMessage({ idle_ms: 16 * MIN + 12_000, timeout_ms: 15 * MIN }),
    "idle for 16m12s (timeout 15m)",
  );
});

test("planIdleStops: what is due, what is left alone, what is busy", () => {
  const instances = [
    record("idle", { lastActivityAt: ago(16 * MIN) }),
    record("active", { lastActivityAt: ago(16 * MIN) }),
    record("fresh-start", { stateChangedAt: ago(1 * MIN) }),
    record("never", { lastActivityAt: ago(1000 * MIN) }),
    record("stopped", { state: "stopped" as InstanceState }),
    record("busy", { lastActivityAt: ago(30 * MIN) }),
    record("unreadable"),
  ];
  const timeouts = new Map<string, number | null>([
    ["idle", 15 * MIN],
    ["active", 15 * MIN],
    ["fresh-start", 15 * MIN],
    ["never", null],
    ["stopped", 1],
    ["busy", 15 * MIN],
  ]);
  const plan = planIdleStops(instances, {
    latest: new Map([["active", NOW - 2 * MIN]]),
    timeouts,
    busy: new Map([["busy", "start"]]),
    now: NOW,
  });
  assert.equal(plan.checked, 6, "running instances only");
  assert.deepEqual(plan.due, [{ name: "idle", idle_ms: 16 * MIN, timeout_ms: 15 * MIN }]);
  assert.deepEqual(plan.skipped, [{ name: "busy", reason: "busy: start in progress" }]);
});

test("mergeActivity: the log moves activity forward; an open connection is activity now", () => {
  const instances = [
    record("logged", { port: 20001, lastActivityAt: ago(10 * MIN) }),
    record("old-log", { port: 20002, lastActivityAt: ago(1 * MIN) }),
    record("socket", { port: 20003, lastActivityAt: ago(10 * MIN) }),
    record("socket-recent", { port: 20004, lastActivityAt: ago(10_000) }),
    record("stopped", { port: 20005, state: "stopped" as InstanceState }),
  ];
  const { latest, toRecord } = mergeActivity(
    instances,
    new Map([
      ["logged", NOW - 3 * MIN],
      ["old-log", NOW - 5 * MIN],
    ]),
    new Set([20003, 20004, 20005]),
    NOW,
  );
  assert.equal(latest.get("logged"), NOW - 3 * MIN);
  assert.equal(latest.get("old-log"), NOW - 1 * MIN, "an older log line does not move it back");
  assert.equal(latest.get("socket"), NOW);
  assert.equal(latest.get("socket-recent"), NOW);
  assert.equal(latest.get("stopped"), -Infinity, "a stopped instance's port is not its own");
  assert.deepEqual(
    [...toRecord].map(([name, at]) => [name, at.getTime()]),
    [
      ["logged", NOW - 3 * MIN],
      ["socket", NOW],
    ],
    "a connection is stored at most once a minute",
  );
});

interface Harness {
  ctx: AccContext;
  store: Store;
  stopped: string[];
  /** Ports given back to acc-ports by the stops. */
  held: number[];
  failStop: Set<string>;
  accessLog: string;
}

async function harness(t: TestContext): Promise<Harness> {
  const home = await mkdtemp(path.join(os.tmpdir(), "acc-monitor-"));
  const paths = homePaths(home);
  await mkdir(paths.nginxLogs, { recursive: true });
  const store = openSqliteStore(paths.store);
  await store.migrate();
  t.after(async () => {
    await store.close();
    await rm(home, { recursive: true, force: true });
  });
  const stopped: string[] = [];
  const held: number[] = [];
  const failStop = new Set<string>();
  const ctx = {
    home,
    paths,
    config: { idle_timeout: 15 * MIN } as AccConfig,
    store,
    now: () => new Date(NOW),
    progress: { step: () => undefined },
    manifests: new Map<string, ModelManifest>(),
    processes: {
      stopProgram: (name: string) => {
        if (failStop.has(name))
          return Promise.reject(new Error(`supervisord: cannot stop ${name}`));
        stopped.push(name);
        return Promise.resolve({ killed: false });
      },
    },
    cache: { cgroups: Promise.resolve({ enabled: false, config: "off" }) },
    ports: {
      hold: (port: number) => {
        held.push(port);
        return Promise.resolve("held");
      },
    },
  } as unknown as AccContext;
  // The model's manifest as its code folder holds it: no idle_timeout, so the config's applies.
  ctx.manifests.set(codeDirOf(ctx, "hello", "1.0.0", "abc"), {} as ModelManifest);
  return {
    ctx,
    store,
    stopped,
    held,
    failStop,
    accessLog: path.join(paths.nginxLogs, "access.log"),
  };
}

async function addRunning(
  store: Store,
  name: string,
  fields: { startedAgo: number; activityAgo?: number; idleTimeout?: number | null },
): Promise<void> {
  await store.insertInstance(
    {
      name,
      model: "hello",
      modelVersion: "1.0.0",
      modelHash: "abc",
      hosts: [],
      params: {},
      idleTimeout: fields.idleTimeout,
      portRange: { min: 20000, max: 20999 },
    },
    ago(fields.startedAgo),
  );
  await store.updateInstance(name, { state: "running" }, ago(fields.startedAgo));
  if (fields.activityAgo !== undefined) {
    await store.updateInstance(name, { lastActivityAt: ago(fields.activityAgo) }, ago(0));
  }
}

test("monitorPass: stops idle instances with an idle event, reads the log first", async (t) => {
  const h = await harness(t);
  await addRunning(h.store, "idle", { startedAgo: 60 * MIN, activityAgo: 16 * MIN + 12_000 });
  await addRunning(h.store, "used", { startedAgo: 60 * MIN, activityAgo: 30 * MIN });
  await addRunning(h.store, "never", { startedAgo: 60 * MIN, idleTimeout: null });
  await addRunning(h.store, "short", {
    startedAgo: 60 * MIN,
    activityAgo: 2 * MIN,
    idleTimeout: MIN,
  });
  // "used" had a request a minute ago, in the log only.
  await appendFile(
    h.accessLog,
    `${(NOW - MIN) / 1000} used 200 0.001 127.0.0.1 "GET / HTTP/1.1" 5\n`,
  );

  const dry = await monitorPass(h.ctx, { dryRun: true });
  assert.deepEqual(dry.stopped, []);
  assert.deepEqual(
    dry.would_stop.map((s) => s.name),
    ["idle", "short"],
  );
  assert.deepEqual(h.stopped, [], "a dry run stops nothing");

  const report = await monitorPass(h.ctx, { dryRun: false });
  assert.equal(report.checked, 4);
  assert.deepEqual(report.stopped, [
    { name: "idle", idle_ms: 16 * MIN + 12_000, timeout_ms: 15 * MIN },
    { name: "short", idle_ms: 2 * MIN, timeout_ms: MIN },
  ]);
  assert.deepEqual(report.errors, []);
  const ports = new Map(
    (await h.store.listInstances()).map((instance) => [instance.name, instance.port]),
  );
  assert.deepEqual(
    h.held.sort(),
    [ports.get("idle"), ports.get("short")].sort(),
    "a stopped instance's port goes back to acc-ports",
  );
  assert.deepEqual(h.stopped.sort(), ["idle", "short"]);
  const states = new Map((await h.store.listInstances()).map((i) => [i.name, i]));
  assert.equal(states.get("idle")?.state, "stopped");
  assert.equal(states.get("used")?.state, "running");
  assert.equal(states.get("used")?.lastActivityAt, ago(MIN), "the log's activity is stored");
  const events = await h.store.listEvents({ instance: "idle", limit: 5 });
  assert.deepEqual(
    events.map((e) => [e.action, e.cause, e.outcome, e.message]),
    [["stop", "idle", "ok", "idle for 16m12s (timeout 15m)"]],
  );

  const again = await monitorPass(h.ctx, { dryRun: false });
  assert.deepEqual(again.stopped, [], "nothing twice");
  assert.equal(again.checked, 2);
});

test("monitorPass: a failing stop is reported and the pass goes on; a busy one is skipped", async (t) => {
  const h = await harness(t);
  await addRunning(h.store, "a-fails", { startedAgo: 60 * MIN });
  await addRunning(h.store, "b-busy", { startedAgo: 60 * MIN });
  await addRunning(h.store, "c-ok", { startedAgo: 60 * MIN });
  h.failStop.add("a-fails");
  const lease = await h.store.tryLease("b-busy", "start", ago(0));
  assert.ok("release" in lease);

  const report = await monitorPass(h.ctx, { dryRun: false });
  assert.deepEqual(
    report.stopped.map((s) => s.name),
    ["c-ok"],
  );
  assert.deepEqual(report.errors, [
    { name: "a-fails", message: "supervisord: cannot stop a-fails" },
  ]);
  assert.deepEqual(report.skipped, [{ name: "b-busy", reason: "busy: start in progress" }]);
  await lease.release();
});

test("startMonitorLoop: passes one after another until aborted; a failed pass is one log line", async (t) => {
  const h = await harness(t);
  await addRunning(h.store, "x", { startedAgo: 60 * MIN });
  const controller = new AbortController();
  const reports: number[] = [];
  const lines: string[] = [];
  h.failStop.add("x");
  const loop = startMonitorLoop(h.ctx, {
    intervalMs: 10,
    signal: controller.signal,
    onReport: (report) => {
      reports.push(report.errors.length);
      if (reports.length === 3) controller.abort();
    },
    log: (line) => lines.push(line),
  });
  const timeout = setTimeout(() => controller.abort(), 5000);
  await loop;
  clearTimeout(timeout);
  // The failed stop leaves x "stopping" (for acc doctor), so later passes leave it alone.
  assert.deepEqual(reports, [1, 0, 0]);
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? "", /^acc monitor: x: supervisord: cannot stop x$/);
});

test("monitorPass: activity stored after the pass read the store keeps the instance up", async (t) => {
  const h = await harness(t);
  await addRunning(h.store, "raced", { startedAgo: 60 * MIN });
  const stale = await h.store.listInstanceActivity();
  // Another monitor (or a wake) records a request once this pass has read the store.
  await h.store.updateInstance("raced", { lastActivityAt: ago(1000) }, ago(0));
  const ctx = {
    ...h.ctx,
    store: { ...h.store, listInstanceActivity: () => Promise.resolve(stale) },
  };
  const report = await monitorPass(ctx, { dryRun: false });
  assert.deepEqual(report.stopped, []);
  assert.deepEqual(report.skipped, [{ name: "raced", reason: "no longer idle (running)" }]);
  assert.deepEqual(h.stopped, []);
});
