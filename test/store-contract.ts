import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { TestContext } from "node:test";
import { AccError } from "../src/lib/errors.js";
import { withLease } from "../src/services/leases.js";
import type { NewInstance, Store } from "../src/store/store.js";

const NOW = "2026-11-26T10:00:00.000Z";

function newInstance(name: string, hosts: string[] = [`${name}.localhost`]): NewInstance {
  return {
    name,
    model: "hello",
    modelVersion: "1.0.0",
    modelHash: "abc",
    hosts,
    params: { greeting: "hi" },
    idleTimeout: undefined,
    portRange: { min: 20000, max: 20002 },
  };
}

/**
 * The behaviour every store implementation must have. `open` gives a fresh, migrated store;
 * `childScript` opens the same store from another process (for cross-process leases).
 */
export async function storeContract(
  t: TestContext,
  open: () => Promise<Store>,
  childLeaseCommand: (resource: string) => { file: string; args: string[] },
): Promise<void> {
  const store = await open();
  t.after(() => store.close());

  await t.test("instances: insert, read, ports unique and reused", async () => {
    const a = await store.insertInstance(newInstance("a"), NOW);
    const b = await store.insertInstance(newInstance("b"), NOW);
    assert.equal(a.state, "creating");
    assert.equal(a.port, 20000);
    assert.equal(b.port, 20001);
    assert.deepEqual((await store.getInstance("a"))?.hosts, ["a.localhost"]);
    assert.deepEqual((await store.getInstance("a"))?.params, { greeting: "hi" });
    assert.equal(await store.getInstance("zzz"), undefined);
    await store.deleteInstance("a");
    const c = await store.insertInstance(newInstance("c"), NOW);
    assert.equal(c.port, 20000, "a freed port is given again");
    await store.insertInstance(newInstance("d"), NOW);
    await assert.rejects(
      store.insertInstance(newInstance("e"), NOW),
      /no free instance port left in 20000-20002/,
    );
    assert.deepEqual(
      (await store.listInstances()).map((i) => i.name),
      ["b", "c", "d"],
    );
  });

  await t.test("names and hosts are unique", async () => {
    await assert.rejects(
      store.insertInstance(newInstance("b", ["other.localhost"]), NOW),
      (e: unknown) => e instanceof AccError && e.code === "ACC_CONFLICT",
    );
    await store.deleteInstance("d");
    await assert.rejects(
      store.insertInstance(newInstance("f", ["b.localhost"]), NOW),
      /host b.localhost is already used by instance b/,
    );
    assert.equal(await store.getInstance("f"), undefined, "nothing half-inserted");
    assert.equal(await store.hostOwner("b.localhost"), "b");
  });

  await t.test("updates: state, idle timeout, hosts", async () => {
    await store.updateInstance(
      "b",
      { state: "running", operation: null, idleTimeout: null },
      "2026-11-26T11:00:00.000Z",
    );
    let b = await store.getInstance("b");
    assert.equal(b?.state, "running");
    assert.equal(b?.stateChangedAt, "2026-11-26T11:00:00.000Z");
    assert.equal(b?.idleTimeout, null);
    await store.updateInstance("b", { idleTimeout: 60_000, hosts: ["x.example.com"] }, NOW);
    b = await store.getInstance("b");
    assert.equal(b?.idleTimeout, 60_000);
    assert.equal(await store.hostOwner("b.localhost"), undefined);
    assert.equal(await store.hostOwner("x.example.com"), "b");
    // A host another instance has: a conflict, and the instance keeps its hosts.
    await assert.rejects(
      store.updateInstance("c", { hosts: ["c.localhost", "x.example.com"] }, NOW),
      (e: unknown) => e instanceof AccError && e.code === "ACC_CONFLICT",
    );
    assert.deepEqual((await store.getInstance("c"))?.hosts, ["c.localhost"]);
    assert.equal(await store.hostOwner("c.localhost"), "c");
    assert.equal(await store.hostOwner("x.example.com"), "b");
  });

  await t.test("activity only moves forward, many instances at once", async () => {
    await store.recordActivity([
      { name: "b", at: "2026-11-26T12:00:00.000Z" },
      { name: "c", at: "2026-11-26T12:00:00.000Z" },
      { name: "gone", at: "2026-11-26T12:00:00.000Z" },
    ]);
    await store.recordActivity([{ name: "b", at: "2026-11-26T11:00:00.000Z" }]);
    assert.equal((await store.getInstance("b"))?.lastActivityAt, "2026-11-26T12:00:00.000Z");
    assert.equal((await store.getInstance("c"))?.lastActivityAt, "2026-11-26T12:00:00.000Z");
  });

  await t.test("events are kept after the instance goes, newest last, limited", async () => {
    for (let i = 0; i < 5; i++) {
      await store.addEvent(
        {
          instance: "b",
          action: "start",
          cause: "cli",
          outcome: "ok",
          durationMs: i,
          message: null,
        },
        NOW,
      );
    }
    await store.addEvent(
      { instance: "c", action: "stop", cause: null, outcome: "ok", durationMs: null, message: "m" },
      NOW,
    );
    await store.deleteInstance("b");
    const events = await store.listEvents({ instance: "b", limit: 3 });
    assert.deepEqual(
      events.map((e) => e.durationMs),
      [2, 3, 4],
    );
    assert.equal((await store.listEvents({ limit: 100 })).length, 6);
    const byState = new Map<string, number>();
    for (const { state } of await store.listInstances())
      byState.set(state, (byState.get(state) ?? 0) + 1);
    assert.deepEqual(await store.countByState(), byState);
    const [stop] = await store.listEvents({ action: "stop", outcome: "ok", limit: 1 });
    assert.equal(stop?.message, "m", "the newest event of one action and outcome");
    assert.deepEqual(await store.listEvents({ action: "stop", outcome: "failed", limit: 1 }), []);
  });

  await t.test("instances: search, filters, sort by activity, paging in the query", async () => {
    const add = async (
      name: string,
      model: string,
      hosts: string[],
      state: "running" | "stopped",
      activity: string | null,
    ) => {
      await store.insertInstance(
        { ...newInstance(name, hosts), model, portRange: { min: 21000, max: 21099 } },
        NOW,
      );
      await store.updateInstance(name, { state, lastActivityAt: activity }, NOW);
    };
    await add("q-alpha", "m1", ["alpha.example.com"], "running", "2026-11-26T10:00:00.000Z");
    await add("q-beta", "m2", ["www.shop.example.org", "beta.localhost"], "stopped", null);
    await add("q-gamma", "m1", ["gamma.localhost"], "running", "2026-11-26T12:00:00.000Z");
    await add("q-delta", "m2", [], "stopped", "2026-11-26T12:00:00.000Z");
    const names = async (query: Parameters<Store["listInstances"]>[0]) =>
      (await store.listInstances(query)).map((i) => i.name);

    assert.deepEqual(await names({ search: "q-" }), ["q-alpha", "q-beta", "q-delta", "q-gamma"]);
    assert.deepEqual(await names({ search: "SHOP" }), ["q-beta"], "any host, any case");
    assert.deepEqual(await names({ search: "Q-GAM" }), ["q-gamma"], "the name, any case");
    assert.deepEqual(await names({ search: "a_p" }), [], "'_' is a character, not a wildcard");
    assert.deepEqual(await names({ search: "%" }), [], "'%' is a character, not a wildcard");
    assert.deepEqual(
      (await names({ search: "LOCALHOST" })).filter((name) => name.startsWith("q-")),
      ["q-beta", "q-gamma"],
    );
    assert.deepEqual(await names({ search: "example.org" }), ["q-beta"], "a second host");
    for (const search of ['","', '["', "org,beta", "]"])
      assert.deepEqual(await names({ search }), [], `${search}: hosts, not their JSON text`);
    assert.deepEqual(await names({ search: "\\" }), []);
    assert.deepEqual(await names({ state: "running", search: "q-" }), ["q-alpha", "q-gamma"]);
    assert.deepEqual(await names({ model: "m2" }), ["q-beta", "q-delta"]);
    assert.deepEqual(await names({ model: "m2", state: "running" }), []);
    assert.deepEqual(
      await names({ search: "q-", sort: "activity" }),
      ["q-delta", "q-gamma", "q-alpha", "q-beta"],
      "latest activity first, equal ones by name, never active last",
    );
    assert.deepEqual(await names({ search: "q-", sort: "activity", limit: 2, offset: 1 }), [
      "q-gamma",
      "q-alpha",
    ]);
    assert.deepEqual(await names({ search: "q-", offset: 3 }), ["q-gamma"]);
    assert.deepEqual(await names({ search: "q-", limit: 1 }), ["q-alpha"]);
    assert.deepEqual(await names({ search: "q-", offset: 10 }), []);
    const [alpha] = await store.listInstances({ search: "alpha.example" });
    assert.deepEqual(alpha?.hosts, ["alpha.example.com"], "whole records");
    const query = { search: "q-", sort: "activity", limit: 3, offset: 1 } as const;
    assert.deepEqual(
      await store.listInstanceSummaries(query),
      (await store.listInstances(query)).map(
        ({ modelHash: _h, operation: _o, database: _d, limits: _l, ...summary }) => summary,
      ),
      "summaries: the same instances, all but hash, operation, database and limits",
    );
    assert.deepEqual(
      await store.listInstanceActivity(),
      (await store.listInstances()).map((i) => ({
        name: i.name,
        model: i.model,
        modelVersion: i.modelVersion,
        modelHash: i.modelHash,
        state: i.state,
        port: i.port,
        idleTimeout: i.idleTimeout,
        stateChangedAt: i.stateChangedAt,
        lastActivityAt: i.lastActivityAt,
      })),
      "activity: every instance by name, with what a monitor pass reads of it",
    );
    for (const name of ["q-alpha", "q-beta", "q-gamma", "q-delta"])
      await store.deleteInstance(name);
  });

  await t.test("tokens: add, read, names unique among tokens not revoked", async () => {
    const token = (id: string, name: string) => ({
      id,
      name,
      scope: "instance:c",
      secretHash: "ab".repeat(32),
      createdAt: NOW,
      expiresAt: null,
    });
    assert.deepEqual(await store.listTokens(), []);
    await store.addToken({ ...token("aaaaaaaaaaaa", "ci"), expiresAt: "2026-12-26T10:00:00.000Z" });
    await store.addToken({ ...token("bbbbbbbbbbbb", "deploy"), scope: "admin" });
    assert.deepEqual(await store.getTokenById("aaaaaaaaaaaa"), {
      id: "aaaaaaaaaaaa",
      name: "ci",
      scope: "instance:c",
      secretHash: "ab".repeat(32),
      createdAt: NOW,
      expiresAt: "2026-12-26T10:00:00.000Z",
      lastUsedAt: null,
      revokedAt: null,
    });
    assert.equal(await store.getTokenById("zzzzzzzzzzzz"), undefined);
    await assert.rejects(
      store.addToken(token("cccccccccccc", "ci")),
      (e: unknown) =>
        e instanceof AccError &&
        e.code === "ACC_CONFLICT" &&
        e.message === 'a token named "ci" already exists',
    );
    assert.equal(await store.getTokenById("cccccccccccc"), undefined, "nothing inserted");

    assert.equal(await store.revokeToken("aaaaaaaaaaaa", "2026-11-26T11:00:00.000Z"), true);
    assert.equal(
      await store.revokeToken("aaaaaaaaaaaa", "2026-11-26T12:00:00.000Z"),
      false,
      "revoked once",
    );
    assert.equal(await store.revokeToken("zzzzzzzzzzzz", NOW), false);
    assert.equal((await store.getTokenById("aaaaaaaaaaaa"))?.revokedAt, "2026-11-26T11:00:00.000Z");
    // The name of a revoked token is free again.
    await store.addToken(token("cccccccccccc", "ci"));
    assert.deepEqual(
      (await store.listTokens()).map((k) => [k.id, k.name, k.revokedAt === null]),
      [
        ["aaaaaaaaaaaa", "ci", false],
        ["bbbbbbbbbbbb", "deploy", true],
        ["cccccccccccc", "ci", true],
      ],
    );
  });

  await t.test("tokens: last use only moves forward", async () => {
    await store.touchToken("bbbbbbbbbbbb", "2026-11-26T12:00:00.000Z");
    await store.touchToken("bbbbbbbbbbbb", "2026-11-26T11:00:00.000Z");
    await store.touchToken("zzzzzzzzzzzz", "2026-11-26T11:00:00.000Z");
    assert.equal(
      (await store.getTokenById("bbbbbbbbbbbb"))?.lastUsedAt,
      "2026-11-26T12:00:00.000Z",
    );
    assert.equal((await store.getTokenById("cccccccccccc"))?.lastUsedAt, null);
  });

  await t.test("leases: one holder at a time in a process", async () => {
    const order: string[] = [];
    const slow = withLease(
      store,
      "x",
      "start",
      async () => {
        order.push("a-in");
        await new Promise((r) => setTimeout(r, 100));
        order.push("a-out");
      },
      { waitMs: 5000 },
    );
    // Until the first holds it: on a loaded machine that takes more than any fixed sleep.
    while (!order.includes("a-in")) await new Promise((r) => setTimeout(r, 5));
    await assert.rejects(
      withLease(store, "x", "stop", () => Promise.resolve(), { waitMs: 20, what: "instance x" }),
      /instance x is busy: start in progress \(pid \d+/,
    );
    await withLease(store, "x", "stop", () => Promise.resolve(order.push("b")), { waitMs: 5000 });
    await slow;
    assert.deepEqual(order, ["a-in", "a-out", "b"]);
    assert.deepEqual(await store.listLeases(), []);
  });

  await t.test(
    "leases: another live process blocks; a dead holder's lease is taken over",
    async () => {
      const { file, args } = childLeaseCommand("y");
      const child = spawn(file, args, { stdio: ["ignore", "pipe", "inherit"] });
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.on("data", (d: Buffer) =>
            d.toString().includes("held") ? resolve() : undefined,
          );
          child.on("exit", (code) => reject(new Error(`child exited ${code}`)));
        });
        await assert.rejects(
          withLease(store, "y", "stop", () => Promise.resolve(), { waitMs: 50 }),
          /busy: hold in progress/,
        );
        child.kill("SIGKILL");
        await new Promise((resolve) => child.once("exit", resolve));
        const took = await withLease(store, "y", "stop", () => Promise.resolve("taken"), {
          waitMs: 2000,
        });
        assert.equal(took, "taken");
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }
    },
  );
}
