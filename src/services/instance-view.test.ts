import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import type { ProgramState } from "../drivers/supervisord/index.js";
import { openSqliteStore } from "../store/open.js";
import type { AccContext } from "./context.js";
import { listInstancesView } from "./instance-view.js";

const NOW = "2026-11-26T10:00:00.000Z";

test("list view: memory sort, largest first, none last by name; memory asked only for live ones", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "acc-view-"));
  const store = openSqliteStore(path.join(dir, "state.db"));
  await store.migrate();
  // Two real processes of different sizes: this test's node and a sleep.
  const small = spawn("sleep", ["60"], { stdio: "ignore" });
  t.after(async () => {
    small.kill("SIGKILL");
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const running = (pid: number): ProgramState => ({
    state: "RUNNING",
    pid,
    exitStatus: 0,
    description: "",
    spawnError: "",
  });
  // "stale" runs for supervisord but is stopped in the store: never looked up.
  const programs = new Map([
    ["big", running(process.pid)],
    ["tiny", running(small.pid ?? 0)],
    ["stale", running(process.pid)],
  ]);
  const asked: string[] = [];
  const ctx = {
    store,
    config: { domain: "localhost", http_port: 8080, cgroups: "off", tls: "off" },
    cache: { cgroups: Promise.resolve({ enabled: false, config: "off" }) },
    processes: {
      isRunning: () => Promise.resolve(true),
      allProgramStates: () => {
        asked.push("states");
        return Promise.resolve(programs);
      },
    },
  } as unknown as AccContext;
  const states: Record<string, "running" | "stopped"> = {
    a: "stopped",
    big: "running",
    stale: "stopped",
    tiny: "running",
    z: "stopped",
  };
  for (const [name, state] of Object.entries(states)) {
    await store.insertInstance(
      {
        name,
        model: name === "z" ? "other" : "hello",
        modelVersion: "1",
        modelHash: "h",
        hosts: [`${name}.localhost`],
        params: {},
        idleTimeout: undefined,
        portRange: { min: 20000, max: 20099 },
      },
      NOW,
    );
    await store.updateInstance(name, { state }, NOW);
  }

  const bySize = await listInstancesView(ctx, { sort: "memory" });
  assert.deepEqual(
    bySize.map((i) => i.name),
    ["big", "tiny", "a", "stale", "z"],
  );
  assert.ok((bySize[0]?.memory_mb ?? 0) > (bySize[1]?.memory_mb ?? Infinity));
  assert.equal(bySize.find((i) => i.name === "stale")?.memory_mb, null, "stopped: no figure");
  assert.deepEqual(
    (await listInstancesView(ctx, { sort: "memory", limit: 2, offset: 1 })).map((i) => i.name),
    ["tiny", "a"],
    "paged after the sort",
  );
  const filtered = (query: Parameters<typeof listInstancesView>[1]) =>
    listInstancesView(ctx, query).then((list) => list.map((i) => i.name));
  assert.deepEqual(await filtered({ sort: "memory", model: "hello", state: "stopped" }), [
    "a",
    "stale",
  ]);
  assert.deepEqual(await filtered({ sort: "memory", search: "TIN" }), ["tiny"]);

  asked.length = 0;
  const stopped = await listInstancesView(ctx, { state: "stopped" });
  assert.deepEqual(
    stopped.map((i) => [i.name, i.memory_mb]),
    [
      ["a", null],
      ["stale", null],
      ["z", null],
    ],
  );
  assert.deepEqual(asked, [], "no live instance on the page: supervisord is not asked");
  const page = await listInstancesView(ctx, { limit: 1, offset: 1 });
  assert.equal(page[0]?.name, "big");
  assert.ok((page[0]?.memory_mb ?? 0) > 0);
  assert.equal(page[0]?.url, "http://big.localhost:8080/");
});
