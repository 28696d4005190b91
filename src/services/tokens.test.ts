import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { isAccError } from "../lib/errors.js";
import { openSqliteStore } from "../store/open.js";
import type { Store } from "../store/store.js";
import type { AccContext } from "./context.js";
import {
  createToken,
  listTokens,
  parseExpiry,
  revokeInstanceTokens,
  revokeToken,
  verifyToken,
} from "./tokens.js";

const START = Date.parse("2026-11-26T10:00:00.000Z");

describe("tokens service on a real SQLite store", () => {
  let tmp: string;
  let store: Store;
  let clock = START;
  let ctx: AccContext;
  const advance = (ms: number): void => void (clock += ms);

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "acc-tokens-"));
    store = openSqliteStore(path.join(tmp, "state.db"));
    await store.migrate();
    await store.insertInstance(
      {
        name: "shop",
        model: "hello",
        modelVersion: "1.0.0",
        modelHash: "abc",
        hosts: ["shop.localhost"],
        params: {},
        idleTimeout: undefined,
        portRange: { min: 20000, max: 20010 },
      },
      new Date(START).toISOString(),
    );
    // Tokens need only the store and the clock.
    ctx = { store, now: () => new Date(clock) } as unknown as AccContext;
  });

  after(async () => {
    await store.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it("create: the secret is shown once, stored only as its hash; default names count up", async () => {
    const a = await createToken(ctx, { scope: "admin" });
    assert.match(a.token, /^acc_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    assert.ok(a.token.startsWith(`acc_${a.id}_`));
    assert.deepEqual(
      { ...a, token: undefined, id: undefined },
      {
        id: undefined,
        token: undefined,
        name: "admin-1",
        scope: "admin",
        created_at: "2026-11-26T10:00:00.000Z",
        expires_at: null,
      },
    );
    const stored = await store.getTokenById(a.id);
    assert.equal(stored?.secretHash, createHash("sha256").update(a.token).digest("hex"));
    // The list is oldest first (ties broken by id): one millisecond apart.
    advance(1);
    assert.equal((await createToken(ctx, { scope: "admin" })).name, "admin-2");
    advance(1);
    assert.equal((await createToken(ctx, { scope: "read" })).name, "read-1");
    advance(1);
    assert.equal((await createToken(ctx, { scope: "instance:shop" })).name, "instance-shop-1");
    const listed = await listTokens(ctx);
    assert.deepEqual(
      listed.map((t) => [t.name, t.scope, t.state]),
      [
        ["admin-1", "admin", "active"],
        ["admin-2", "admin", "active"],
        ["read-1", "read", "active"],
        ["instance-shop-1", "instance:shop", "active"],
      ],
    );
    assert.ok(!JSON.stringify(listed).includes(a.token.slice(17)), "no secret in the list");
    assert.ok(!("secretHash" in (listed[0] ?? {})), "no hash in the list");
  });

  it("create: events name the token and its scope, never the secret", async () => {
    const made = await createToken(ctx, {
      scope: "instance:shop",
      name: "customer",
      cause: "token:admin-1",
    });
    const events = await store.listEvents({ limit: 100 });
    const last = events.at(-1);
    assert.equal(last?.action, "token-create");
    assert.equal(last?.instance, "shop", "an instance token's event is its instance's");
    assert.equal(last?.cause, "token:admin-1");
    assert.equal(last?.message, `token customer (${made.id}), scope instance:shop`);
    assert.ok(
      events.every((e) => !(e.message ?? "").includes("acc_")),
      "no secret in events",
    );
    const admin = events.find((e) => e.message?.includes("admin-1"));
    assert.equal(admin?.instance, null);
    assert.equal(admin?.cause, "cli");
  });

  it("create: bad scope, unknown instance, bad name, taken name, bad expiry", async () => {
    await assert.rejects(
      createToken(ctx, { scope: "root" }),
      (e: unknown) => isAccError(e, "ACC_INVALID") && e.message === 'invalid scope "root"',
    );
    await assert.rejects(
      createToken(ctx, { scope: "instance:nope" }),
      (e: unknown) => isAccError(e, "ACC_NOT_FOUND") && e.message.includes('"nope"'),
    );
    for (const name of ["", "-x", "a b", "x".repeat(65), "0123456789ab", "é"]) {
      await assert.rejects(
        createToken(ctx, { scope: "read", name }),
        (e: unknown) => isAccError(e, "ACC_INVALID") && e.message.startsWith("invalid token name"),
        name,
      );
    }
    await assert.rejects(
      createToken(ctx, { scope: "read", name: "customer" }),
      (e: unknown) => isAccError(e, "ACC_CONFLICT") && e.message.includes('"customer"'),
    );
    await assert.rejects(
      createToken(ctx, { scope: "read", expires: "2020-01-01" }),
      (e: unknown) =>
        isAccError(e, "ACC_INVALID") &&
        e.message === 'invalid expiry "2020-01-01": it is in the past',
    );
    await assert.rejects(
      createToken(ctx, { scope: "read", expires: "soon" }),
      /invalid expiry "soon": not a duration or a date/,
    );
    const count = (await listTokens(ctx)).length;
    assert.equal(count, 5, "nothing made by a refused create");
  });

  it("verify: the right secret passes and says the scope; last use is written at most once a minute", async () => {
    const made = await createToken(ctx, { scope: "instance:shop", name: "verify-me" });
    assert.deepEqual(await verifyToken(ctx, made.token), {
      ok: true,
      token: { id: made.id, name: "verify-me", scope: { kind: "instance", name: "shop" } },
    });
    const first = new Date(clock).toISOString();
    assert.equal((await store.getTokenById(made.id))?.lastUsedAt, first);
    advance(30_000);
    await verifyToken(ctx, made.token);
    assert.equal(
      (await store.getTokenById(made.id))?.lastUsedAt,
      first,
      "not again within the minute",
    );
    advance(30_000);
    await verifyToken(ctx, made.token);
    assert.equal(
      (await store.getTokenById(made.id))?.lastUsedAt,
      new Date(Date.parse(first) + 60_000).toISOString(),
    );
  });

  it("verify: malformed, unknown id, wrong secret for a real id", async () => {
    const made = await createToken(ctx, { scope: "read" });
    const [, id = "", rest = ""] = /^acc_([0-9a-f]{12})_(.*)$/.exec(made.token) ?? [];
    const flipped = `acc_${id}_${rest[0] === "A" ? "B" : "A"}${rest.slice(1)}`;
    for (const [secret, reason] of [
      ["", "malformed"],
      ["Bearer x", "malformed"],
      [made.token.slice(0, -1), "malformed"],
      [`${made.token}x`, "malformed"],
      [`${made.token}\n`, "malformed"],
      [made.token.toUpperCase(), "malformed"],
      [`acc_000000000000_${rest}`, "unknown"],
      [flipped, "unknown"],
    ] as const) {
      assert.deepEqual(
        await verifyToken(ctx, secret),
        { ok: false, reason },
        JSON.stringify(secret),
      );
    }
  });

  it("revoke by id or name: verify then says revoked; a second revoke changes nothing", async () => {
    const made = await createToken(ctx, { scope: "admin", name: "to-revoke" });
    const revoked = await revokeToken(ctx, "to-revoke");
    assert.equal(revoked.state, "revoked");
    assert.equal(revoked.revoked_at, new Date(clock).toISOString());
    assert.deepEqual(await verifyToken(ctx, made.token), { ok: false, reason: "revoked" });
    const events = (await store.listEvents({ limit: 1000 })).filter(
      (e) => e.action === "token-revoke",
    );
    assert.equal(events.length, 1);
    assert.equal(events[0]?.message, `token to-revoke (${made.id}), scope admin`);
    advance(1000);
    const again = await revokeToken(ctx, made.id);
    assert.equal(again.revoked_at, revoked.revoked_at, "first revoke time kept");
    assert.equal(
      (await store.listEvents({ limit: 1000 })).filter((e) => e.action === "token-revoke").length,
      1,
    );
    // The name is free again; revoking by name then means the one not revoked.
    const second = await createToken(ctx, { scope: "read", name: "to-revoke" });
    assert.equal((await revokeToken(ctx, "to-revoke")).id, second.id);
    await assert.rejects(
      revokeToken(ctx, "no-such-token"),
      (e: unknown) =>
        isAccError(e, "ACC_NOT_FOUND") && e.message === 'no token with id or name "no-such-token"',
    );
    await assert.rejects(revokeToken(ctx, "0123456789ab"), /no token with id or name/);
  });

  it("expiry: a duration or a date; verify says expired once it passes; list says so", async () => {
    const inHour = await createToken(ctx, { scope: "read", name: "hourly", expires: "1h" });
    assert.equal(inHour.expires_at, new Date(clock + 3_600_000).toISOString());
    const dated = await createToken(ctx, {
      scope: "read",
      name: "dated",
      expires: "2026-11-27",
    });
    assert.equal(dated.expires_at, "2026-11-27T00:00:00.000Z");
    assert.equal((await verifyToken(ctx, inHour.token)).ok, true);
    advance(3_600_000);
    assert.deepEqual(await verifyToken(ctx, inHour.token), { ok: false, reason: "expired" });
    assert.equal((await verifyToken(ctx, dated.token)).ok, true);
    const states = Object.fromEntries((await listTokens(ctx)).map((t) => [t.name, t.state]));
    assert.equal(states.hourly, "expired");
    assert.equal(states.dated, "active");
    // Revoked wins over expired.
    await revokeToken(ctx, "hourly");
    assert.deepEqual(await verifyToken(ctx, inHour.token), { ok: false, reason: "revoked" });
  });

  it("revokeInstanceTokens: every token of that instance, no other", async () => {
    const before = (await listTokens(ctx)).filter(
      (t) => t.scope === "instance:shop" && t.state === "active",
    );
    assert.ok(before.length >= 2);
    const names = await revokeInstanceTokens(ctx, "shop");
    assert.deepEqual(names.sort(), before.map((t) => t.name).sort());
    const after = await listTokens(ctx);
    assert.ok(after.filter((t) => t.scope === "instance:shop").every((t) => t.state === "revoked"));
    assert.ok(after.some((t) => t.scope === "admin" && t.state === "active"));
  });
});

describe("parseExpiry", () => {
  const now = new Date("2026-11-26T10:00:00.000Z");

  it("durations from now, dates (UTC without a zone), never", () => {
    assert.equal(parseExpiry("30d", now), "2026-12-26T10:00:00.000Z");
    assert.equal(parseExpiry("12h", now), "2026-11-26T22:00:00.000Z");
    assert.equal(parseExpiry("1h30m", now), "2026-11-26T11:30:00.000Z");
    assert.equal(parseExpiry("2027-01-31", now), "2027-01-31T00:00:00.000Z");
    assert.equal(parseExpiry("2027-01-31T08:30", now), "2027-01-31T08:30:00.000Z");
    assert.equal(parseExpiry("2027-01-31T08:30:00+02:00", now), "2027-01-31T06:30:00.000Z");
    assert.equal(parseExpiry("2026-11-26T10:00:01Z", now), "2026-11-26T10:00:01.000Z");
    assert.equal(parseExpiry("never", now), null);
  });

  it("refuses the past, zero, impossible dates and garbage, naming the value", () => {
    for (const [text, why] of [
      ["2026-11-26T10:00:00Z", "it is in the past"],
      ["2020-01-01", "it is in the past"],
      ["0s", "it is not in the future"],
      ["2027-02-30", "not a date"],
      ["2027-13-01", "not a date"],
      ["2027-01-31T25:00", "not a date"],
      ["2027-01-31 08:30", "not a date"],
      ["2027-1-3", "not a date"],
      ["-5d", "not a duration or a date"],
      ["tomorrow", "not a duration or a date"],
      ["", "not a duration or a date"],
      [`${"9".repeat(30)}d`, "too far in the future"],
    ]) {
      assert.throws(
        () => parseExpiry(text ?? "", now),
        (e: unknown) =>
          isAccError(e, "ACC_INVALID") &&
          e.message === `invalid expiry ${JSON.stringify(text)}: ${why}` &&
          e.hint !== undefined,
        text,
      );
    }
  });
});
