import assert from "node:assert/strict";
import { test } from "node:test";
import type { InstanceState } from "../core/states.js";
import type { InstanceRecord } from "../store/store.js";
import { decideBeforeWake, FAILED_RETRY_MS, type WakeRequest } from "./before-wake.js";

const NOW = Date.parse("2025-01-01T12:00:00Z");
const filter = { wakeFilter: ["bot", "uptime"], now: NOW };

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

test("before a wake: a failed instance answers at once for a while, then may start again", () => {
  assert.deepEqual(answer(instance("failed", 1_000), browser), [
    "refuse",
    503,
    "failed",
    { "retry-after": String(FAILED_RETRY_MS / 1000) },
  ]);
  const refused = decideBeforeWake(instance("failed", 1_000), browser, filter);
  assert.ok(refused.action === "refuse");
  assert.equal(refused.code, "ACC_START_FAILED");
  assert.equal(refused.reason, "exited with status 3");
  assert.deepEqual(answer(instance("failed", FAILED_RETRY_MS + 1), browser), ["wake"]);
  assert.equal(answer(instance("failed", FAILED_RETRY_MS + 1), crawler)[2], "filtered");
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
