import assert from "node:assert/strict";
import { test } from "node:test";
import type { InstanceState } from "../core/states.js";
import type { InstanceRecord } from "../store/store.js";
import { decideBeforeWake, type WakeRequest } from "./before-wake.js";

const NOW = Date.parse("2025-01-01T12:00:00Z");
const filter = {
  wakeFilter: ["bot", "uptime"],
  now: NOW,
  restart: { allowed: true, failures: 0 } as const,
};

function instance(state: InstanceState, changedMsAgo = 60_000): InstanceRecord {
  const at = new Date(NOW - changedMsAgo).toISOString();
  return {
    name: "foo",
    model: "hello",
    modelVersion: "1",
    modelHash: "h",
    state,
    operation: null,
    port: 20000,
    hosts: ["foo.localhost"],
    params: {},
    idleTimeout: undefined,
    createdAt: at,
    updatedAt: at,
    stateChangedAt: at,
    lastActivityAt: null,
    lastError: state === "failed" ? "exited with status 3" : null,
    database: null,
  };
}

const browser: WakeRequest = {
  method: "GET",
  userAgent: "Mozilla/5.0",
  neverReachedInstance: true,
};
const crawler: WakeRequest = { ...browser, userAgent: "Mozilla/5.0 (compatible; GoogleBot/2.1)" };

function answer(
  record: InstanceRecord | undefined,
  request: WakeRequest,
): [string, number?, string?, Record<string, string>?] {
  const decision = decideBeforeWake(record, request, filter);
  return decision.action === "wake"
    ? ["wake"]
    : ["refuse", decision.status, decision.kind, decision.headers];
}

test("before a wake: no such instance, or one being destroyed, is a 404", () => {
  assert.deepEqual(answer(undefined, browser), ["refuse", 404, "not-found", {}]);
  assert.deepEqual(answer(instance("destroying"), browser), ["refuse", 404, "not-found", {}]);
});

test("before a wake: a suspended instance is never woken, not even by a browser", () => {
  assert.deepEqual(answer(instance("suspended"), browser), [
    "refuse",
    503,
    "suspended",
    { "retry-after": "3600" },
  ]);
});

test("before a wake: a stopped instance wakes for a browser, not for a crawler", () => {
  assert.deepEqual(answer(instance("stopped"), browser), ["wake"]);
  assert.deepEqual(answer(instance("stopped"), { ...browser, userAgent: "" }), ["wake"]);
  assert.deepEqual(answer(instance("stopped"), crawler), [
    "refuse",
    503,
    "filtered",
    { "retry-after": "300" },
  ]);
  assert.deepEqual(
    answer(instance("stopped"), { ...browser, userAgent: "UptimeRobot/2.0" })[2],
    "filtered",
  );
  // Running (by the store): nginx could not reach it, so it is started again whoever asks.
  assert.deepEqual(answer(instance("running"), crawler), ["wake"]);
});

test("before a wake: a failed instance in its backoff or given up answers at once", () => {
  const backingOff = {
    ...filter,
    restart: { allowed: false, failures: 2, retryAt: NOW + 1_500, lastFailureAt: NOW - 500 },
  } as const;
  const refused = decideBeforeWake(instance("failed", 500), browser, backingOff);
  assert.ok(refused.action === "refuse");
  assert.deepEqual(
    [refused.status, refused.kind, refused.code, refused.headers],
    [503, "failed", "ACC_START_FAILED", { "retry-after": "2" }],
  );
  assert.equal(refused.reason, "exited with status 3; it failed 2 times in a row; next try in 2 s");
  // An upgrade goes through the same function: the same refusal, no spawn.
  const upgrade = { ...browser, method: "GET" };
  assert.equal(decideBeforeWake(instance("failed"), upgrade, backingOff).action, "refuse");
  const givenUp = {
    ...filter,
    restart: { allowed: false, failures: 10, retryAt: null, lastFailureAt: NOW - 500 },
  } as const;
  const final = decideBeforeWake(instance("failed"), browser, givenUp);
  assert.ok(final.action === "refuse");
  assert.deepEqual(final.headers, {});
  assert.match(final.reason ?? "", /failed 10 times in a row and is not started again/);
  // Backoff over: it may start again, and the wake filter still applies.
  assert.deepEqual(answer(instance("failed", 1_000), browser), ["wake"]);
  assert.equal(answer(instance("failed", 1_000), crawler)[2], "filtered");
});

test("before a wake: a request the app may have seen is never sent again, whatever the method", () => {
  const seen = { ...browser, neverReachedInstance: false };
  for (const state of ["running", "stopping", "starting", "stopped", "failed"] as const) {
    for (const method of ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH", ""]) {
      assert.deepEqual(
        answer(instance(state), { ...seen, method }),
        ["refuse", 502, "failed", {}],
        `${state} ${method}`,
      );
    }
  }
  // Refused (nothing listened): the app never had it, so a start and the request are safe.
  assert.deepEqual(answer(instance("running"), { ...browser, method: "POST" }), ["wake"]);
  assert.deepEqual(answer(instance("stopping"), { ...browser, method: "POST" }), ["wake"]);
});
