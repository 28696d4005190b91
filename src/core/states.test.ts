import assert from "node:assert/strict";
import { test } from "node:test";
import { assertTransition, canTransition, INSTANCE_STATES, TRANSITIONS } from "./states.js";

test("every state has a row in the transition table, and every target is a state", () => {
  for (const state of INSTANCE_STATES) {
    assert.ok(Array.isArray(TRANSITIONS[state]), state);
    for (const target of TRANSITIONS[state])
      assert.ok(
        (INSTANCE_STATES as readonly string[]).includes(String(target)),
        `${state} -> ${target}`,
      );
  }
});

test("the lifecycle paths are allowed", () => {
  const path = [
    "creating",
    "stopped",
    "starting",
    "running",
    "stopping",
    "stopped",
    "destroying",
  ] as const;
  for (let i = 1; i < path.length; i++)
    assert.ok(canTransition(path[i - 1]!, path[i]!), `${path[i - 1]} -> ${path[i]}`);
  assert.ok(canTransition("starting", "failed"));
  assert.ok(canTransition("failed", "starting"));
  assert.ok(canTransition("stopped", "suspended"));
  assert.ok(canTransition("suspended", "stopped"));
});

test("impossible transitions are refused with a clear error", () => {
  assert.equal(canTransition("destroying", "running"), false);
  assert.equal(canTransition("suspended", "starting"), false);
  assert.equal(canTransition("stopped", "running"), false);
  assert.throws(
    () => assertTransition("foo", "suspended", "starting"),
    /instance foo is suspended and cannot become starting/,
  );
});
