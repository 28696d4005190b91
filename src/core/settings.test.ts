import assert from "node:assert/strict";
import { test } from "node:test";
import { exitCodeFor, isAccError } from "../lib/errors.js";
import { parseIdleTimeoutSetting, parseSettings } from "./settings.js";

test("idle-timeout values: a duration, never, default", () => {
  assert.equal(parseIdleTimeoutSetting("15m"), 15 * 60_000);
  assert.equal(parseIdleTimeoutSetting("1h30m"), 90 * 60_000);
  assert.equal(parseIdleTimeoutSetting("never"), null);
  assert.equal(parseIdleTimeoutSetting("NEVER"), null);
  assert.equal(parseIdleTimeoutSetting("default"), undefined);
  assert.deepEqual(parseSettings(["idle-timeout=never"]), { idleTimeout: { value: null } });
  assert.deepEqual(parseSettings(["idle-timeout=default"]), { idleTimeout: { value: undefined } });
});

test("a bad value, an unknown key or no '=' is refused with exit 2, naming it", () => {
  const refused = (pairs: string[], code: string, pattern: RegExp): void => {
    assert.throws(
      () => parseSettings(pairs),
      (error: unknown) =>
        isAccError(error) &&
        error.code === code &&
        exitCodeFor(error) === 2 &&
        pattern.test(error.message),
    );
  };
  refused(["idle-timeout=soon"], "ACC_INVALID", /invalid idle-timeout "soon"/);
  refused(["idle-timeout=0"], "ACC_INVALID", /invalid idle-timeout "0"/);
  refused(["idle-timeout="], "ACC_INVALID", /invalid idle-timeout ""/);
  refused(["colour=blue"], "ACC_INVALID", /unknown setting "colour"/);
  refused(["idle-timeout"], "ACC_USAGE", /expected KEY=VALUE, got "idle-timeout"/);
  refused(["=15m"], "ACC_USAGE", /expected KEY=VALUE/);
});
