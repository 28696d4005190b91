import assert from "node:assert/strict";
import { test } from "node:test";
import { createAuthThrottle } from "./auth-throttle.js";

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

test("auth throttle: the 11th try within a minute is refused, until the oldest failure is a minute old", () => {
  const c = clock();
  const throttle = createAuthThrottle({ maxFailures: 10, windowMs: 60_000, now: c.now });
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(throttle.check("10.0.0.1"), { allowed: true }, `try ${i + 1}`);
    throttle.fail("10.0.0.1");
    c.advance(1000);
  }
  // First failure at +0 s, now +10 s: allowed again at +60 s.
  assert.deepEqual(throttle.check("10.0.0.1"), { allowed: false, retryAfterSeconds: 50 });
  assert.deepEqual(throttle.check("10.0.0.2"), { allowed: true }, "other sources are not held");
  c.advance(49_500);
  assert.deepEqual(throttle.check("10.0.0.1"), { allowed: false, retryAfterSeconds: 1 });
  c.advance(500);
  assert.deepEqual(
    throttle.check("10.0.0.1"),
    { allowed: true },
    "the oldest failure left the window",
  );
  throttle.fail("10.0.0.1");
  assert.equal(
    throttle.check("10.0.0.1").allowed,
    false,
    "still 10 failures within the last minute",
  );
});

test("auth throttle: a success clears the source's failures", () => {
  const c = clock();
  const throttle = createAuthThrottle({ maxFailures: 3, windowMs: 60_000, now: c.now });
  for (let i = 0; i < 3; i++) throttle.fail("a");
  assert.equal(throttle.check("a").allowed, false);
  throttle.succeed("a");
  assert.deepEqual(throttle.check("a"), { allowed: true });
  assert.equal(throttle.size(), 0);
});

test("auth throttle: failures spread out never block", () => {
  const c = clock();
  const throttle = createAuthThrottle({ maxFailures: 3, windowMs: 60_000, now: c.now });
  for (let i = 0; i < 100; i++) {
    assert.deepEqual(throttle.check("a"), { allowed: true });
    throttle.fail("a");
    c.advance(20_001);
  }
});

test("auth throttle: memory stays bounded; stale sources go first, then the oldest", () => {
  const c = clock();
  const throttle = createAuthThrottle({
    maxFailures: 2,
    windowMs: 60_000,
    maxSources: 100,
    now: c.now,
  });
  for (let i = 0; i < 2; i++) throttle.fail("held");
  c.advance(1);
  for (let i = 0; i < 50; i++) throttle.fail(`old-${i}`);
  c.advance(61_000);
  // The old ones are stale now: new sources push them out, and "held" is forgotten too
  // (its window is over, so nothing is lost).
  for (let i = 0; i < 100; i++) throttle.fail(`new-${i}`);
  assert.equal(throttle.size(), 100);
  for (let i = 0; i < 10_000; i++) throttle.fail(`flood-${i}`);
  assert.equal(throttle.size(), 100);
  assert.deepEqual(throttle.check("new-0"), { allowed: true }, "pushed out by the flood");
  throttle.fail("flood-9999");
  assert.equal(throttle.check("flood-9999").allowed, false);
});

test("auth throttle: defaults are 10 failures a minute", () => {
  const c = clock();
  const throttle = createAuthThrottle({ now: c.now });
  for (let i = 0; i < 10; i++) throttle.fail("x");
  assert.deepEqual(throttle.check("x"), { allowed: false, retryAfterSeconds: 60 });
});
