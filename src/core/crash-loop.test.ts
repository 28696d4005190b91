import assert from "node:assert/strict";
import { test } from "node:test";
import {
  failureSeries,
  restartDecision,
  retryDelay,
  type CrashPolicy,
  type LifeEvent,
} from "./crash-loop.js";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const policy: CrashPolicy = {
  retries: 4,
  firstDelayMs: 1_000,
  maxDelayMs: 5_000,
  resetAfterMs: 300_000,
};

function at(ms: number, action: string, outcome: string, cause: string | null): LifeEvent {
  return { time: new Date(T0 + ms).toISOString(), action, outcome, cause };
}

/** A wake that passes its health check and a crash `ranMs` later, from `startMs`. */
function crashAfterStart(startMs: number, ranMs: number): LifeEvent[] {
  return [at(startMs, "start", "ok", "wake"), at(startMs + ranMs, "crash", "failed", "exit")];
}

function newestFirst(...groups: LifeEvent[][]): LifeEvent[] {
  return groups.flat().reverse();
}

test("crash loop: the delay doubles from the first and stops at the cap", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 30].map((n) => retryDelay(n, policy)),
    [1_000, 2_000, 4_000, 5_000, 5_000, 5_000],
  );
  assert.equal(retryDelay(0, policy), 0);
});

test("crash loop: each crash right after a start counts, and the next try waits", () => {
  const events = newestFirst(
    [at(0, "create", "ok", "cli"), at(0, "start", "ok", "create")],
    [at(100, "crash", "failed", "exit")],
    crashAfterStart(2_000, 50),
  );
  assert.equal(failureSeries(events, policy).length, 2);
  // Two failures: 2 s after the last one (at 2,050 ms).
  assert.deepEqual(restartDecision(events, T0 + 3_000, policy), {
    allowed: false,
    failures: 2,
    retryAt: T0 + 4_050,
    lastFailureAt: T0 + 2_050,
  });
  assert.deepEqual(restartDecision(events, T0 + 4_050, policy), { allowed: true, failures: 2 });
});

test("crash loop: after `retries` failures in a row no automatic start comes", () => {
  const events = newestFirst(
    [at(0, "start", "ok", "cli")],
    [at(10, "crash", "failed", "signal")],
    crashAfterStart(2_000, 10),
    [at(5_000, "start", "failed", "wake")],
    crashAfterStart(10_000, 10),
  );
  const decision = restartDecision(events, T0 + 3_600_000, policy);
  assert.deepEqual(decision, {
    allowed: false,
    failures: 4,
    retryAt: null,
    lastFailureAt: T0 + 10_010,
  });
});

test("crash loop: a long healthy run, a stop by acc or a start by the sysadmin begins a new series", () => {
  const failing = [
    at(0, "start", "ok", "wake"),
    at(10, "crash", "failed", "exit"),
    ...crashAfterStart(2_000, 10),
    ...crashAfterStart(5_000, 10),
  ];
  assert.equal(failureSeries(newestFirst(failing), policy).length, 3);
  // Ran 10 minutes before it crashed: that crash is the first of its series.
  const healthy = newestFirst(failing, crashAfterStart(20_000, 600_000));
  assert.equal(failureSeries(healthy, policy).length, 1);
  const stopped = newestFirst(failing, [at(8_000, "stop", "ok", "cli")], crashAfterStart(9_000, 5));
  assert.equal(failureSeries(stopped, policy).length, 1);
  const restarted = newestFirst(failing, [at(8_000, "start", "ok", "cli")]);
  assert.deepEqual(restartDecision(restarted, T0 + 8_001, policy), {
    allowed: true,
    failures: 0,
  });
  // A failed start the sysadmin asked for counts once and ends the walk back.
  const cliFailed = newestFirst(failing, [at(8_000, "start", "failed", "cli")]);
  assert.equal(failureSeries(cliFailed, policy).length, 1);
  // Events the rule does not know (warnings, backups) change nothing.
  const noisy = newestFirst(failing, [at(6_000, "backup", "ok", "cli")]);
  assert.equal(failureSeries(noisy, policy).length, 3);
});
