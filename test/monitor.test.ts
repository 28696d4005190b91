import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { createAccHome } from "./harness/acc.js";

interface InstanceView {
  name: string;
  state: string;
  port: number;
  idle_timeout: string | null;
  last_activity_at: string | null;
}

interface Report {
  checked: number;
  stopped: { name: string; idle_ms: number; timeout_ms: number }[];
  would_stop: { name: string }[];
  skipped: { name: string; reason: string }[];
  errors: { name: string; message: string }[];
}

interface EventView {
  instance: string | null;
  action: string;
  cause: string | null;
  outcome: string;
  message: string | null;
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, timeout: 5000 });
    socket.once("connect", () => {
      socket.setTimeout(0);
      resolve(socket);
    });
    socket.once("timeout", () => socket.destroy(new Error(`connect to ${port} timed out`)));
    socket.once("error", reject);
  });
}

test(
  "monitor: stops idle instances, not used, held-open or never ones; set, suspend, resume, events",
  { timeout: 120_000 },
  async (t) => {
    const acc = await createAccHome();
    t.after(() => acc.cleanup());
    const idle = `mi${process.pid}`; // requested once, then idle past its 1 s timeout
    const held = `mh${process.pid}`; // 1 s timeout, but a connection to its port stays open
    const never = `mn${process.pid}`; // idle-timeout never
    const used = `mu${process.pid}`; // 4 s timeout, requested again just before the pass
    // This test runs the passes itself: acc server's own monitor loop must not run one first.
    acc.env.ACC_MONITOR_INTERVAL = "1h";
    await acc.ok(["boot"]);
    const create = async (name: string, timeout: string): Promise<InstanceView> =>
      JSON.parse(
        await acc.ok(["create", "hello", "--name", name, "--idle-timeout", timeout, "--json"]),
      ) as InstanceView;
    await create(idle, "1s");
    const heldView = await create(held, "1s");
    await create(never, "never");
    await create(used, "4s");
    const usedRunningSince = Date.now();

    assert.equal((await acc.request(`${idle}.localhost`)).status, 200);
    assert.equal(
      (await acc.request("nobody.localhost")).status,
      404,
      "an unknown host is logged too",
    );
    const socket = await openSocket(heldView.port);
    t.after(() => socket.destroy());

    // "used" has been running longer than its 4 s timeout when its request comes in.
    await sleep(Math.max(0, usedRunningSince + 4300 - Date.now()));
    const usedAt = Date.now();
    assert.equal((await acc.request(`${used}.localhost`)).status, 200);
    // nginx writes its access log buffer every second.
    await sleep(1300);

    const dry = await acc.ok(["monitor", "--dry-run"]);
    assert.match(
      dry,
      new RegExp(`^would stop ${idle}: idle for \\d+(ms|s) \\(timeout 1s\\)$`, "m"),
    );
    for (const name of [held, never, used]) assert.doesNotMatch(dry, new RegExp(name));
    const afterDry = JSON.parse(await acc.ok(["list", "--json"])) as InstanceView[];
    assert.deepEqual(
      afterDry.map((i) => i.state),
      ["running", "running", "running", "running"],
      "a dry run stops nothing",
    );

    const report = JSON.parse(await acc.ok(["monitor", "--json"])) as Report;
    assert.deepEqual(
      report.stopped.map((s) => s.name),
      [idle],
      `only ${idle} is stopped: ${JSON.stringify(report)}`,
    );
    assert.equal(report.checked, 4);
    assert.deepEqual(report.would_stop, []);
    assert.deepEqual(report.errors, []);
    const states = new Map(
      (JSON.parse(await acc.ok(["list", "--json"])) as InstanceView[]).map((i) => [i.name, i]),
    );
    assert.equal(states.get(idle)?.state, "stopped");
    assert.equal(states.get(held)?.state, "running", "an open connection is activity");
    assert.equal(states.get(never)?.state, "running");
    assert.equal(states.get(used)?.state, "running", "the request read from the log is activity");
    const usedActivity = Date.parse(states.get(used)?.last_activity_at ?? "");
    assert.ok(
      Math.abs(usedActivity - usedAt) < 2000,
      `last activity of ${used} is its request: ${states.get(used)?.last_activity_at}`,
    );

    const events = JSON.parse(await acc.ok(["events", idle, "--json"])) as EventView[];
    const stop = events.at(-1);
    assert.equal(stop?.action, "stop");
    assert.equal(stop?.cause, "idle");
    assert.equal(stop?.outcome, "ok");
    assert.match(stop?.message ?? "", /^idle for \d+(ms|s) \(timeout 1s\)$/);
    const table = await acc.ok(["events", "-n", "2"]);
    assert.match(table, /^TIME\s+INSTANCE\s+ACTION\s+CAUSE\s+OUTCOME\s+DURATION\s+MESSAGE$/m);
    assert.equal(table.trimEnd().split("\n").length, 3);

    // set: round trip through show.
    const shown = async (name: string): Promise<InstanceView> =>
      JSON.parse(await acc.ok(["show", name, "--json"])) as InstanceView;
    assert.match(await acc.ok(["set", never, "idle-timeout=15m"]), /idle-timeout=15m/);
    assert.equal((await shown(never)).idle_timeout, "15m");
    assert.match(await acc.ok(["set", never, "idle-timeout=default"]), /default \(15m\)/);
    assert.equal((await shown(never)).idle_timeout, null);
    await acc.ok(["set", never, "idle-timeout=never"]);
    assert.equal((await shown(never)).idle_timeout, "never");
    const unknownKey = await acc.run(["set", never, "colour=blue"]);
    assert.equal(unknownKey.code, 2);
    assert.match(unknownKey.stderr, /unknown setting "colour"/);
    const badValue = await acc.run(["set", never, "idle-timeout=soon"]);
    assert.equal(badValue.code, 2);
    assert.match(badValue.stderr, /invalid idle-timeout "soon"/);
    assert.equal((await acc.run(["set", "nosuch", "idle-timeout=1m"])).code, 3);

    // suspend and resume: round trip through show.
    socket.destroy();
    await acc.ok(["suspend", held]);
    assert.equal((await shown(held)).state, "suspended");
    assert.equal((await acc.request(`${held}.localhost`)).status, 503);
    await acc.ok(["resume", held]);
    assert.equal((await shown(held)).state, "stopped");
    const notSuspended = await acc.run(["resume", held]);
    assert.equal(notSuspended.code, 1);
    assert.match(notSuspended.stderr, /not suspended/);

    // Events outlive their instance; a name with neither is not found; a bad name is bad input.
    await acc.ok(["destroy", idle, "--yes", "--no-backup"]);
    const kept = JSON.parse(await acc.ok(["events", idle, "--json"])) as EventView[];
    assert.ok(kept.some((e) => e.action === "stop" && e.cause === "idle"));
    assert.equal(kept.at(-1)?.action, "destroy");
    assert.equal((await acc.run(["events", "nosuch"])).code, 3);
    assert.equal((await acc.run(["events", "Bad_Name"])).code, 2);
    assert.equal((await acc.run(["events", "-n", "x"])).code, 2);
  },
);
