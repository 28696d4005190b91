import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { OPERATIONS } from "../src/operations/registry.js";
import type { Operation } from "../src/operations/types.js";
import { ACC_ROOT, createAccHome, type AccHome } from "./harness/acc.js";
import {
  callApi,
  cliLine,
  errorOf,
  httpCallFor,
  makeToken,
  MINIMAL_INPUTS,
  missingInputs,
  NO_DATABASE,
  readEvents,
  viaToken,
  type ApiAnswer,
  type InputNames,
  type MadeToken,
  type Via,
} from "./harness/api.js";

interface Instance {
  name: string;
  state: string;
  url: string;
  port: number;
  params: Record<string, string>;
  hosts: string[];
  idle_timeout: string | null;
  env?: Record<string, string>;
}

interface EventJson {
  id: number;
  instance: string | null;
  action: string;
  cause: string | null;
  outcome: string;
  message: string | null;
}

/** What every case shares: the home, and tokens made once it is booted. */
interface Suite {
  acc: AccHome;
  admin: MadeToken;
  read: MadeToken;
  /** instance:aa1 */
  own: MadeToken;
  /** A backup id of aa1, once instance.backup ran. */
  backup?: string;
}

const MAIN = "aa1";
const OTHER = "ab1";
const SCRATCH = "ac1";
/** A name no instance has: refusals for OTHER must read exactly as for it. */
const NOBODY = "ax9";

function json<T>(answer: ApiAnswer, status = 200): T {
  assert.equal(answer.status, status, answer.body.slice(0, 600));
  return answer.json as T;
}

async function call(
  s: Suite,
  method: string,
  route: string,
  options: { via?: Via; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  return callApi(s.acc, method, route, options);
}

async function events(s: Suite, name?: string): Promise<EventJson[]> {
  return JSON.parse(
    await s.acc.ok(["events", ...(name === undefined ? [] : [name]), "-n", "500", "--json"]),
  ) as EventJson[];
}

/** One case per operation id: its route called, its answer checked. In this order. */
const ROUTE_CASES: Record<string, (s: Suite) => Promise<void>> = {
  "instance.create": async (s) => {
    const created = json<Instance & { generated: object }>(
      await call(s, "POST", "/instances", {
        body: { model: "hello", name: MAIN, params: ["greeting=Hi"] },
      }),
    );
    assert.equal(created.name, MAIN);
    assert.equal(created.state, "running");
    assert.equal(created.params.greeting, "Hi");
    assert.deepEqual(created.generated, {});
    const page = await s.acc.request(`${MAIN}.localhost`);
    assert.equal(page.status, 200);
    assert.match(page.body, /Hi/);
    const other = json<Instance>(
      await call(s, "POST", "/instances", { body: { model: "hello", name: OTHER, start: false } }),
    );
    assert.equal(other.state, "stopped");
    // With Accept: application/x-ndjson, a long operation says its steps as it goes.
    const progress = await call(s, "POST", "/instances", {
      body: { model: "hello", name: SCRATCH, start: false },
      headers: { accept: "application/x-ndjson" },
    });
    assert.equal(progress.status, 200);
    assert.match(String(progress.headers["content-type"]), /^application\/x-ndjson/);
    const lines = progress.body
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { step?: string; result?: Instance });
    assert.ok(lines.length >= 2, progress.body);
    assert.ok(
      lines.slice(0, -1).every((l) => typeof l.step === "string" || "output" in l),
      progress.body,
    );
    assert.equal(lines.at(-1)?.result?.name, SCRATCH);
  },
  "instance.list": async (s) => {
    const all = json<Instance[]>(await call(s, "GET", "/instances"));
    assert.deepEqual(
      all.map((i) => i.name),
      [MAIN, OTHER, SCRATCH],
    );
    const page = json<Instance[]>(await call(s, "GET", "/instances?limit=1&offset=1"));
    assert.deepEqual(
      page.map((i) => i.name),
      [OTHER],
    );
    // A read token lists too, through nginx.
    const read = json<Instance[]>(
      await call(s, "GET", "/instances", { via: viaToken(s.read.token) }),
    );
    assert.equal(read.length, 3);
  },
  "instance.show": async (s) => {
    const shown = json<Instance>(await call(s, "GET", `/instances/${MAIN}`));
    assert.equal(shown.name, MAIN);
    assert.equal(shown.env, undefined, "no secrets unless asked");
    const secret = json<Instance>(await call(s, "GET", `/instances/${MAIN}?secrets=true`));
    assert.equal(secret.env?.GREETING, "Hi");
    const admin = json<Instance>(
      await call(s, "GET", `/instances/${MAIN}?secrets=true`, { via: viaToken(s.admin.token) }),
    );
    assert.equal(admin.env?.GREETING, "Hi");
    // Secrets are for admin alone: read refused, and the answer holds none of them.
    const read = await call(s, "GET", `/instances/${MAIN}?secrets=true`, {
      via: viaToken(s.read.token),
    });
    assert.equal(errorOf(read).code, "ACC_FORBIDDEN");
    assert.equal(read.status, 403);
    assert.doesNotMatch(read.body, /GREETING/);
    const own = await call(s, "GET", `/instances/${MAIN}?secrets=true`, {
      via: viaToken(s.own.token),
    });
    assert.equal(own.status, 403);
    const readShow = json<Instance>(
      await call(s, "GET", `/instances/${MAIN}`, { via: viaToken(s.read.token) }),
    );
    assert.equal(readShow.env, undefined);
  },
  "instance.set": async (s) => {
    const set = json<Instance & { changed: string[] }>(
      await call(s, "PATCH", `/instances/${MAIN}`, { body: { settings: ["idle-timeout=15m"] } }),
    );
    assert.equal(set.idle_timeout, "15m");
    assert.ok(set.changed.length > 0, JSON.stringify(set.changed));
  },
  "instance.host-add": async (s) => {
    const added = json<Instance>(
      await call(s, "POST", `/instances/${MAIN}/hosts`, { body: { host: "Shop.Example.TEST" } }),
    );
    assert.deepEqual(added.hosts, [`${MAIN}.localhost`, "shop.example.test"]);
    const page = await s.acc.request("shop.example.test");
    assert.equal(page.status, 200);
    assert.match(page.body, new RegExp(MAIN));
    // Another instance's host, or one it has already: 409 with the CLI's words.
    const taken = await call(s, "POST", `/instances/${OTHER}/hosts`, {
      body: { host: "shop.example.test" },
    });
    assert.equal(taken.status, 409, taken.body);
    assert.match(taken.body, /host shop\.example\.test is already used by instance aa1/);
  },
  "instance.host-remove": async (s) => {
    const removed = json<Instance>(
      await call(s, "DELETE", `/instances/${MAIN}/hosts/shop.example.test`),
    );
    assert.deepEqual(removed.hosts, [`${MAIN}.localhost`]);
    const url = await call(s, "DELETE", `/instances/${MAIN}/hosts/${MAIN}.localhost`);
    assert.equal(url.status, 400, url.body);
    assert.match(url.body, /is the host of aa1's URL/);
  },
  "instance.stop": async (s) => {
    // With an admin token through nginx: the change is an event naming the token.
    const stopped = json<Instance>(
      await call(s, "POST", `/instances/${MAIN}/stop`, { via: viaToken(s.admin.token) }),
    );
    assert.equal(stopped.state, "stopped");
    const audit = (await events(s, MAIN)).find(
      (e) => e.action === "api" && e.message?.startsWith("instance.stop"),
    );
    assert.ok(audit, "an event of the change");
    assert.equal(audit.cause, `token:${s.admin.name}`);
    assert.ok(audit.message?.includes(s.admin.id), audit.message ?? "");
    // The stop's own event names the token too, not the command line.
    const stop = (await events(s, MAIN)).filter((e) => e.action === "stop").at(-1);
    assert.equal(stop?.cause, `token:${s.admin.name}`);
  },
  "instance.start": async (s) => {
    // An instance:NAME token may start its own instance.
    const started = json<Instance>(
      await call(s, "POST", `/instances/${MAIN}/start`, { via: viaToken(s.own.token) }),
    );
    assert.equal(started.state, "running");
    assert.equal((await s.acc.request(`${MAIN}.localhost`)).status, 200);
    const audit = (await events(s, MAIN)).find(
      (e) => e.action === "api" && e.message?.startsWith("instance.start"),
    );
    assert.equal(audit?.cause, `token:${s.own.name}`);
  },
  "instance.restart": async (s) => {
    const restarted = json<Instance>(await call(s, "POST", `/instances/${MAIN}/restart`));
    assert.equal(restarted.state, "running");
  },
  "instance.logs": async (s) => {
    const tail = json<{ text: string; size: number }>(
      await call(s, "GET", `/instances/${MAIN}/logs?lines=5`),
    );
    assert.ok(tail.size > 0, "hello wrote its log");
    assert.ok(tail.text.split("\n").filter(Boolean).length <= 5, tail.text);
    // A stream: the next piece of the log as a server-sent event, from the size just read.
    const stream = await readEvents(s.acc, `/instances/${MAIN}/logs?follow=1&from=${tail.size}`, {
      count: 1,
      whileOpen: () => call(s, "POST", `/instances/${MAIN}/restart`),
    });
    assert.equal(stream.status, 200);
    assert.match(stream.contentType, /^text\/event-stream/);
    assert.equal(typeof (stream.events[0] as { text: string }).text, "string");
    assert.match((stream.events[0] as { text: string }).text, /hello/);
  },
  "event.list": async (s) => {
    const latest = json<EventJson[]>(await call(s, "GET", `/events?name=${MAIN}&lines=3`));
    assert.ok(latest.length > 0 && latest.length <= 3, JSON.stringify(latest));
    assert.ok(latest.every((e) => e.instance === MAIN));
    const all = json<EventJson[]>(await call(s, "GET", "/events?lines=100"));
    assert.ok(all.some((e) => e.instance === OTHER));
    const last = all.at(-1)?.id ?? 0;
    const stream = await readEvents(s.acc, `/events?follow=true&name=${MAIN}&after=${last}`, {
      count: 1,
      via: viaToken(s.read.token),
      whileOpen: () => call(s, "POST", `/instances/${MAIN}/stop`),
    });
    assert.equal(stream.status, 200);
    const event = stream.events[0] as EventJson;
    assert.equal(event.instance, MAIN);
    assert.ok(event.id > last);
  },
  "instance.suspend": async (s) => {
    const suspended = json<Instance>(await call(s, "POST", `/instances/${MAIN}/suspend`));
    assert.equal(suspended.state, "suspended");
    assert.equal((await s.acc.request(`${MAIN}.localhost`)).status, 503);
  },
  "instance.resume": async (s) => {
    const resumed = json<Instance>(await call(s, "POST", `/instances/${MAIN}/resume`));
    assert.equal(resumed.state, "stopped");
  },
  "instance.backup": async (s) => {
    const made = json<{ name: string; backup: string; warnings: string[] }>(
      await call(s, "POST", `/instances/${MAIN}/backups`, { via: viaToken(s.own.token) }),
    );
    assert.equal(made.name, MAIN);
    assert.ok(made.backup.startsWith(path.join(s.acc.home, "backups", MAIN)), made.backup);
  },
  "backup.list": async (s) => {
    const backups = json<{ id: string; instance: string }[]>(
      await call(s, "GET", `/backups?name=${MAIN}`),
    );
    assert.equal(backups.length, 1);
    assert.equal(backups[0]?.instance, MAIN);
    assert.match(backups[0]?.id ?? "", new RegExp(`^${MAIN}/`));
    s.backup = backups[0]?.id;
    // An instance token sees its own backups.
    const own = json<{ id: string }[]>(
      await call(s, "GET", `/backups?name=${MAIN}`, { via: viaToken(s.own.token) }),
    );
    assert.deepEqual(
      own.map((b) => b.id),
      [s.backup],
    );
  },
  "backup.download": async (s) => {
    const stamp = s.backup?.split("/")[1] ?? "";
    const route = `/instances/${MAIN}/backups/${stamp}/download`;
    const archive = await call(s, "GET", route);
    assert.equal(archive.status, 200, archive.body.slice(0, 300));
    assert.equal(archive.headers["content-type"], "application/x-tar");
    assert.match(String(archive.headers["content-disposition"]), /^attachment; filename="/);
    assert.equal(archive.body.slice(257, 262), "ustar", "a tar archive");
    // Its own instance's token may download it (backups hold its secrets); a read token not.
    assert.equal((await call(s, "GET", route, { via: viaToken(s.own.token) })).status, 200);
    assert.equal((await call(s, "GET", route, { via: viaToken(s.read.token) })).status, 403);
  },
  "instance.restore": async (s) => {
    assert.ok(s.backup);
    const restored = json<Instance>(
      await call(s, "POST", `/instances/${MAIN}/restore`, { body: { backup: s.backup } }),
    );
    assert.equal(restored.name, MAIN);
    assert.equal(restored.params.greeting, "Hi");
  },
  "instance.upgrade": async (s) => {
    // On its model's version already: nothing to do, said so, for names and for a model.
    const report = json<{ dry_run: boolean; results: { name: string; outcome: string }[] }>(
      await call(s, "POST", "/upgrades", { body: { names: [MAIN], dry_run: true } }),
    );
    assert.equal(report.dry_run, true);
    assert.deepEqual(
      report.results.map((r) => [r.name, r.outcome]),
      [[MAIN, "skipped"]],
    );
    const byModel = json<{ results: unknown[] }>(
      await call(s, "POST", "/upgrades", { body: { model: "hello" } }),
    );
    assert.deepEqual(byModel.results, []);
    const both = await call(s, "POST", "/upgrades", { body: { names: [MAIN], model: "hello" } });
    assert.equal(both.status, 400, both.body);
  },
  "instance.rollback": async (s) => {
    const refused = await call(s, "POST", `/instances/${MAIN}/rollback`);
    assert.equal(refused.status, 409, refused.body);
    assert.equal(errorOf(refused).code, "ACC_STATE");
    assert.match(errorOf(refused).message, /has no upgrade to roll back/);
  },
  "model.list": async (s) => {
    const models = json<{ name: string }[]>(await call(s, "GET", "/models"));
    assert.ok(models.some((m) => m.name === "hello"));
  },
  "tls.list": async (s) => {
    assert.deepEqual(json(await call(s, "GET", "/tls/certificates")), []);
  },
  "tls.import": async (s) => {
    // tls is off in this home: refused with the CLI's words, and nothing is written.
    const refused = await call(s, "POST", "/tls/certificates", {
      body: { cert: "-----BEGIN CERTIFICATE-----", key: "k", wildcard: true },
    });
    assert.equal(refused.status, 400, refused.body);
    assert.match(errorOf(refused).message, /tls/);
    assert.deepEqual(json(await call(s, "GET", "/tls/certificates")), []);
  },
  "tls.issue": async (s) => {
    // tls is off in this home: refused with the CLI's words; no ACME state is written.
    const refused = await call(s, "POST", `/instances/${MAIN}/certificate`, { body: {} });
    assert.equal(refused.status, 400, refused.body);
    assert.match(errorOf(refused).message, /^tls is off in acc.toml, not acme$/);
    const missing = await call(s, "POST", "/instances/nosuch/certificate", { body: {} });
    assert.equal(missing.status, 400, missing.body);
  },
  "model.show": async (s) => {
    const model = json<{ name: string; params: { name: string }[] }>(
      await call(s, "GET", "/models/hello"),
    );
    assert.equal(model.name, "hello");
    assert.ok(
      model.params.some((p) => p.name === "greeting"),
      JSON.stringify(model.params),
    );
    assert.equal((await call(s, "GET", "/models/nosuch")).status, 404);
  },
  "model.prune": async (s) => {
    const pruned = json<{ dry_run: boolean; removed: unknown[]; kept: number }>(
      await call(s, "POST", "/models/prune", { body: { dry_run: true } }),
    );
    assert.equal(pruned.dry_run, true);
    assert.ok(pruned.kept >= 1);
  },
  "system.status": async (s) => {
    const status = json<{ home: string; server: string; total: number }>(
      await call(s, "GET", "/status"),
    );
    assert.equal(status.home, s.acc.home);
    assert.equal(status.server, "running");
    assert.equal(status.total, 3);
  },
  "system.monitor": async (s) => {
    // No body at all: an empty input (curl -X POST).
    const report = json<{ checked: number; stopped: unknown[] }>(await call(s, "POST", "/monitor"));
    assert.equal(typeof report.checked, "number");
    const dry = json<{ would_stop: unknown[] }>(
      await call(s, "POST", "/monitor", {
        body: "",
        headers: { "content-type": "application/json" },
      }),
    );
    assert.ok(Array.isArray(dry.would_stop));
  },
  "system.doctor": async (s) => {
    const findings = json<{ problem: string; repaired: boolean }[]>(
      await call(s, "POST", "/doctor", { body: {} }),
    );
    assert.ok(Array.isArray(findings));
    assert.ok(findings.every((f) => !f.repaired));
    // A read token may look, not repair.
    assert.equal((await call(s, "POST", "/doctor", { via: viaToken(s.read.token) })).status, 200);
    assert.equal(
      (await call(s, "POST", "/doctor", { via: viaToken(s.read.token), body: { repair: true } }))
        .status,
      403,
    );
  },
  "token.create": async (s) => {
    const made = json<MadeToken>(
      await call(s, "POST", "/tokens", { body: { scope: "read", name: "ap-made" } }),
    );
    assert.match(made.token, /^acc_[0-9a-f]{12}_/);
    assert.equal(made.scope, "read");
    assert.equal((await call(s, "GET", "/instances", { via: viaToken(made.token) })).status, 200);
    // By an admin token: the event names it.
    const byToken = json<MadeToken>(
      await call(s, "POST", "/tokens", {
        via: viaToken(s.admin.token),
        body: { scope: `instance:${OTHER}`, name: "ap-other" },
      }),
    );
    assert.equal(byToken.scope, `instance:${OTHER}`);
    const audit = (await events(s)).find(
      (e) => e.action === "api" && e.message?.startsWith("token.create"),
    );
    assert.equal(audit?.cause, `token:${s.admin.name}`);
  },
  "token.list": async (s) => {
    const answer = await call(s, "GET", "/tokens");
    const tokens = json<{ name: string; state: string }[]>(answer);
    assert.ok(tokens.some((t) => t.name === "ap-made" && t.state === "active"));
    assert.doesNotMatch(answer.body, /acc_[0-9a-f]{12}_/, "no secret in the list");
  },
  "token.revoke": async (s) => {
    const made = json<MadeToken>(await call(s, "POST", "/tokens", { body: { scope: "admin" } }));
    const revoked = json<{ state: string }>(await call(s, "DELETE", `/tokens/${made.id}`));
    assert.equal(revoked.state, "revoked");
    const refused = await call(s, "GET", "/instances", { via: viaToken(made.token) });
    assert.equal(refused.status, 401, "a revoked token is refused");
    assert.equal(errorOf(refused).code, "ACC_UNAUTHORIZED");
    const byName = json<{ state: string }>(await call(s, "DELETE", "/tokens/ap-made"));
    assert.equal(byName.state, "revoked");
  },
  "instance.destroy": async (s) => {
    const gone = json<{ destroyed: boolean; backup: string | null }>(
      await call(s, "DELETE", `/instances/${SCRATCH}?backup=false`),
    );
    assert.deepEqual(gone, { name: SCRATCH, destroyed: true, backup: null });
    assert.equal((await call(s, "GET", `/instances/${SCRATCH}`)).status, 404);
  },
};

/** The input of an operation with every string naming `other` (its name, a backup, a scope). */
function aimedAt(op: Operation, base: Record<string, unknown>, other: string, otherBackup: string) {
  const variants: Record<string, unknown>[] = [];
  const props = op.input.properties;
  if ("name" in props) variants.push({ ...base, name: other });
  const aimed: Record<string, unknown> = { ...base };
  let changed = false;
  for (const [key, schema] of Object.entries(props)) {
    if (key === "name") continue;
    if (schema.type === "string") {
      // backup.download names a backup by its time stamp under the instance of the path.
      const backup = op.id === "backup.download" ? (otherBackup.split("/")[1] ?? "") : otherBackup;
      aimed[key] = key === "backup" ? backup : key === "scope" ? `instance:${other}` : other;
      changed = true;
    }
  }
  if (changed) variants.push(aimed);
  if (variants.length === 0) variants.push(base);
  return variants;
}

test("API: every route of OPERATIONS against a booted home", { timeout: 300_000 }, async (t) => {
  const acc = await createAccHome({ env: NO_DATABASE });
  t.after(() => acc.cleanup());
  await acc.ok(["boot"]);
  const s: Suite = {
    acc,
    admin: await makeToken(acc, "admin", { name: "ap-admin" }),
    read: await makeToken(acc, "read", { name: "ap-read" }),
    own: await makeToken(acc, "read"), // replaced once MAIN exists
  };
  const expiring = await makeToken(acc, "admin", { expires: "2s", name: "ap-expiring" });

  await t.test("each operation has a route case", () => {
    assert.deepEqual(
      OPERATIONS.map((op) => op.id).filter((id) => !(id in ROUTE_CASES)),
      [],
      "add a case to ROUTE_CASES for each new operation",
    );
    assert.deepEqual(missingInputs(OPERATIONS), [], "add an entry to MINIMAL_INPUTS");
  });

  const order = Object.keys(ROUTE_CASES);
  for (const id of order) {
    if (!OPERATIONS.some((op) => op.id === id)) continue;
    await t.test(`${id}`, async () => {
      await ROUTE_CASES[id]?.(s);
      if (id === "instance.create") s.own = await makeToken(acc, `instance:${MAIN}`);
    });
    // The instance token is made once its instance exists: the cases after create use it.
  }

  await t.test("GET /api/v1/openapi.json: valid OpenAPI 3.1, every operation's route", async () => {
    const document = json<{ paths: Record<string, Record<string, { operationId: string }>> }>(
      await call(s, "GET", "/openapi.json", { via: viaToken(s.read.token) }),
    );
    assert.deepEqual(json(await call(s, "GET", "/openapi.json")), document, "the same locally");
    const { Validator } = await import("@seriousme/openapi-schema-validator");
    const validator = new Validator();
    const result = await validator.validate(document);
    assert.equal(validator.version, "3.1");
    assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
    const documented = Object.entries(document.paths).flatMap(([route, methods]) =>
      Object.entries(methods).map(
        ([method, op]) => `${op.operationId} ${method.toUpperCase()} ${route}`,
      ),
    );
    assert.deepEqual(
      documented.sort(),
      [
        ...OPERATIONS.map((op) => `${op.id} ${op.method} /api/v1${op.path}`),
        "api.openapi GET /api/v1/openapi.json",
      ].sort(),
    );
  });

  await t.test("authentication: none, wrong, expired; before any input check", async (tt) => {
    await checkAuth(tt, s, expiring);
  });

  await t.test("a read token: no change, no secret", async () => {
    const names: InputNames = { instance: MAIN, backup: s.backup ?? "", token: s.admin.name };
    for (const op of OPERATIONS) {
      const input = MINIMAL_INPUTS[op.id]?.(names) ?? {};
      const permission = typeof op.permission === "function" ? op.permission(input) : op.permission;
      if (permission === "read") continue;
      const request = httpCallFor(op, input);
      const answer = await call(s, request.method, request.path, {
        via: viaToken(s.read.token),
        ...(request.body ? { body: request.body } : {}),
      });
      assert.equal(answer.status, 403, `${op.id}: ${answer.body}`);
      assert.equal(errorOf(answer).code, "ACC_FORBIDDEN");
    }
    assert.equal(
      (await call(s, "GET", "/tokens", { via: viaToken(s.read.token) })).status,
      403,
      "token list is a secret",
    );
  });

  await t.test("an instance token reaches no other instance by any route", async () => {
    const backups = json<{ id: string }[]>(await call(s, "GET", `/backups?name=${MAIN}`));
    await call(s, "POST", `/instances/${OTHER}/backups`);
    const otherBackup =
      json<{ id: string }[]>(await call(s, "GET", `/backups?name=${OTHER}`))[0]?.id ?? "";
    assert.ok(otherBackup.startsWith(`${OTHER}/`));
    const otherView = json<Instance>(await call(s, "GET", `/instances/${OTHER}`));
    const names: InputNames = { instance: MAIN, backup: backups[0]?.id ?? "", token: s.admin.name };
    const before = await call(s, "GET", "/instances");
    let tried = 0;
    for (const op of OPERATIONS) {
      const base = MINIMAL_INPUTS[op.id]?.(names) ?? {};
      const variants = aimedAt(op, base, OTHER, otherBackup);
      const nobody = aimedAt(op, base, NOBODY, otherBackup.replace(OTHER, NOBODY));
      for (const [i, input] of variants.entries()) {
        const request = httpCallFor(op, input);
        const answer = await call(s, request.method, request.path, {
          via: viaToken(s.own.token),
          ...(request.body ? { body: request.body } : {}),
        });
        const label = `${op.id} ${request.method} ${request.path} ${JSON.stringify(request.body ?? {})}`;
        assert.ok(
          [403, 404].includes(answer.status),
          `${label}: HTTP ${answer.status} ${answer.body}`,
        );
        for (const secret of [OTHER, otherView.url, `:${otherView.port}`])
          assert.ok(!answer.body.includes(secret), `${label}: the answer names ${secret}`);
        // As for a name nobody has: it cannot tell whether OTHER exists.
        const mirror = httpCallFor(op, nobody[i] ?? base);
        const blind = await call(s, mirror.method, mirror.path, {
          via: viaToken(s.own.token),
          ...(mirror.body ? { body: mirror.body } : {}),
        });
        assert.equal(blind.status, answer.status, label);
        assert.equal(blind.body.replaceAll(NOBODY, OTHER), answer.body, label);
        tried++;
      }
    }
    assert.ok(tried >= OPERATIONS.length);
    assert.equal((await call(s, "GET", "/instances")).body, before.body, "nothing changed");
    const listed = await call(s, "GET", "/instances", { via: viaToken(s.own.token) });
    assert.equal(listed.status, 403, "no list of names");
  });

  await t.test("errors: bad input, not found, busy, failure, as the CLI says them", async () => {
    await checkErrors(s);
  });

  await t.test("failed authentications are limited per source", async () => {
    // The socket behind nginx, playing two client addresses (nginx sets X-Real-IP).
    const guesser: Via = { kind: "admin-socket", source: "10.9.9.9", token: "acc_000000000000_x" };
    for (let i = 0; i < 10; i++) {
      const answer = await call(s, "GET", "/instances", { via: guesser });
      assert.equal(answer.status, 401, `attempt ${i + 1}: ${answer.body}`);
    }
    const limited = await call(s, "GET", "/instances", { via: guesser });
    assert.equal(limited.status, 429, limited.body);
    assert.equal(errorOf(limited).code, "ACC_RATE_LIMITED");
    assert.ok(Number(limited.headers["retry-after"]) > 0);
    const right = await call(s, "GET", "/instances", {
      via: { kind: "admin-socket", source: "10.9.9.9", token: s.admin.token },
    });
    assert.equal(right.status, 429, "refused before the token is even looked at");
    const elsewhere = await call(s, "GET", "/instances", {
      via: { kind: "admin-socket", source: "10.9.9.10", token: s.admin.token },
    });
    assert.equal(elsewhere.status, 200, "another source is not limited");
  });
});

async function checkAuth(t: TestContext, s: Suite, expiring: MadeToken): Promise<void> {
  const expect401 = (label: string, answer: ApiAnswer): void => {
    assert.equal(answer.status, 401, `${label}: ${answer.body}`);
    assert.equal(errorOf(answer).code, "ACC_UNAUTHORIZED", label);
    assert.equal(answer.headers["www-authenticate"], "Bearer", label);
  };
  const nginx: Via = { kind: "nginx" };
  expect401("no token", await call(s, "GET", "/instances", { via: nginx }));
  expect401(
    "wrong token",
    await call(s, "GET", "/instances", { via: viaToken("acc_000000000000_wrong") }),
  );
  expect401(
    "not a bearer token",
    await call(s, "GET", "/instances", {
      via: nginx,
      headers: { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` },
    }),
  );
  const wait = Date.parse(
    json<{ expires_at: string }[]>(await call(s, "GET", "/tokens")).find(
      (tk) => (tk as unknown as { name: string }).name === expiring.name,
    )?.expires_at ?? "",
  );
  if (Date.now() < wait)
    await new Promise((resolve) => setTimeout(resolve, wait - Date.now() + 100));
  expect401("expired", await call(s, "GET", "/instances", { via: viaToken(expiring.token) }));
  // No input is looked at before the caller is known: a bad one is still 401, never 400.
  expect401("bad query", await call(s, "GET", "/instances?limit=abc", { via: nginx }));
  expect401("bad body", await call(s, "POST", "/instances", { via: nginx, body: { bogus: 1 } }));
  expect401("broken JSON", await call(s, "POST", "/instances", { via: nginx, body: "{not json" }));
  expect401("openapi", await call(s, "GET", "/openapi.json", { via: nginx }));
  const head = await call(s, "HEAD", "/instances", { via: nginx });
  assert.equal(head.status, 401, "HEAD of a GET route too");
  t.diagnostic("no token, wrong, not bearer, expired, bad inputs: 401");
}

/** The CLI's line for the same input: exit code and stderr. */
async function cli(s: Suite, args: string[]): Promise<{ code: number; line: string }> {
  const result = await s.acc.run(args);
  return { code: result.code, line: result.stderr.trimEnd() };
}

async function sameAsCli(
  s: Suite,
  label: string,
  answer: ApiAnswer,
  status: number,
  args: string[],
  exit: number,
): Promise<void> {
  assert.equal(answer.status, status, `${label}: ${answer.body}`);
  const error = errorOf(answer);
  const line = await cli(s, args);
  assert.equal(line.code, exit, `${label}: acc ${args.join(" ")}: ${line.line}`);
  assert.equal(cliLine(error), line.line.split("\n")[0], label);
}

async function checkErrors(s: Suite): Promise<void> {
  await sameAsCli(
    s,
    "bad name",
    await call(s, "POST", "/instances/foo%3Bbar/start"),
    400,
    ["start", "foo;bar"],
    2,
  );
  await sameAsCli(
    s,
    "bad host",
    await call(s, "POST", "/instances", {
      body: { model: "hello", name: "az1", hosts: ["a b"], start: false },
    }),
    400,
    ["create", "hello", "--name", "az1", "--host", "a b", "--no-start"],
    2,
  );
  await sameAsCli(
    s,
    "bad setting",
    await call(s, "PATCH", `/instances/${MAIN}`, { body: { settings: ["memory=lots"] } }),
    400,
    ["set", MAIN, "memory=lots"],
    2,
  );
  await sameAsCli(
    s,
    "not found",
    await call(s, "GET", "/instances/nosuch"),
    404,
    ["show", "nosuch"],
    3,
  );
  await sameAsCli(
    s,
    "unknown model",
    await call(s, "POST", "/instances", { body: { model: "nosuchmodel" } }),
    404,
    ["create", "nosuchmodel"],
    3,
  );
  const noRoute = await call(s, "GET", "/nosuchroute");
  assert.equal(noRoute.status, 404);
  assert.equal(errorOf(noRoute).code, "ACC_NOT_FOUND");

  // Fields an operation does not take are refused, wherever they are sent.
  const stray: [string, string, unknown][] = [
    ["POST", `/instances/${MAIN}/stop`, { force: true }],
    ["POST", `/instances/${MAIN}/stop?name=${OTHER}`, undefined],
    ["POST", `/instances/${MAIN}/stop`, { name: OTHER }],
    ["DELETE", `/instances/${OTHER}`, { name: MAIN }],
    ["POST", "/monitor", { dry_run: true, extra: 1 }],
    ["GET", `/instances?bogus=1`, undefined],
  ];
  for (const [method, route, body] of stray) {
    const answer = await call(s, method, route, body === undefined ? {} : { body });
    assert.equal(answer.status, 400, `${method} ${route} ${JSON.stringify(body)}: ${answer.body}`);
    assert.equal(errorOf(answer).code, "ACC_INVALID");
  }
  // A JSON body is taken as typed: nothing is coerced into what the schema wants.
  const mistyped: unknown[] = [
    { model: "hello", name: ["az2"], start: false },
    { model: "hello", name: "az2", hosts: "az2.example.com", start: false },
    { model: "hello", name: "az2", start: "false" },
    { model: "hello", name: "az2", start: false, params: [1] },
    { model: "hello", name: null, start: false },
    { model: ["hello"], name: "az2", start: false },
  ];
  for (const body of mistyped) {
    const answer = await call(s, "POST", "/instances", { body });
    assert.equal(answer.status, 400, `${JSON.stringify(body)}: ${answer.body}`);
    assert.match(errorOf(answer).message, /^invalid body \w+: must be /);
  }
  assert.equal((await call(s, "GET", "/instances/az2")).status, 404, "az2 was never made");

  // Busy: a change while another operation holds the instance's lease, as the CLI's.
  const { openContext } = await import("../src/services/open.js");
  const ctx = await openContext({ home: s.acc.home, env: s.acc.env, accRoot: ACC_ROOT });
  try {
    const lease = await ctx.store.tryLease(MAIN, "test-hold", new Date().toISOString());
    assert.ok("release" in lease, "the test holds the lease");
    try {
      await sameAsCli(
        s,
        "busy",
        await call(s, "POST", `/instances/${MAIN}/start`),
        409,
        ["start", MAIN],
        1,
      );
    } finally {
      await lease.release();
    }
  } finally {
    await ctx.store.close();
  }

  // A failure (500): a model whose app exits at once; the same words as the CLI's.
  const models = path.join(s.acc.home, "models", "afail");
  await mkdir(models, { recursive: true });
  await writeFile(
    path.join(models, "model.toml"),
    [
      'name = "afail"',
      'version = "1.0.0"',
      'command = "node -e process.exit(3)"',
      'start_timeout = "10s"',
      "[health]",
      'path = "/"',
      "",
    ].join("\n"),
  );
  json<Instance>(
    await call(s, "POST", "/instances", { body: { model: "afail", name: "ad1", start: false } }),
  );
  const failed = await call(s, "POST", "/instances/ad1/start");
  assert.equal(failed.status, 500, failed.body);
  assert.equal(errorOf(failed).code, "ACC_START_FAILED");
  const line = await cli(s, ["start", "ad1"]);
  assert.equal(line.code, 1);
  assert.equal(line.line.split("\n")[0], cliLine(errorOf(failed)));
}
