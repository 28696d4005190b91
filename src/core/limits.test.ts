import assert from "node:assert/strict";
import { test } from "node:test";
import { AccError } from "../lib/errors.js";
import { effectiveLimits, formatLimit, parseLimit, parseLimitArgs } from "./limits.js";

test("parseLimit reads sizes, CPU shares and counts; 0, none and empty are no limit", () => {
  assert.equal(parseLimit("memory", "512M", "x"), 512 * 1024 ** 2);
  assert.equal(parseLimit("memory", "1.5g", "x"), 1.5 * 1024 ** 3);
  assert.equal(parseLimit("memory", "64MiB", "x"), 64 * 1024 ** 2);
  assert.equal(parseLimit("memory", 8388608, "x"), 8388608);
  assert.equal(parseLimit("cpu", "0.5", "x"), 0.5);
  assert.equal(parseLimit("cpu", 2, "x"), 2);
  assert.equal(parseLimit("pids", "200", "x"), 200);
  for (const none of ["0", "none", "", " NONE "])
    assert.equal(parseLimit("memory", none, "x"), undefined);
});

test("parseLimit refuses bad values with a one-line error naming the value and the source", () => {
  const cases: [Parameters<typeof parseLimit>[0], string][] = [
    ["memory", "lots"],
    ["memory", "12X"],
    ["memory", "1M"],
    ["memory", "-5M"],
    ["cpu", "half"],
    ["cpu", "0.001"],
    ["cpu", "5000"],
    ["pids", "1.5"],
    ["pids", "-1"],
  ];
  for (const [key, value] of cases) {
    assert.throws(
      () => parseLimit(key, value, "acc set"),
      (error: unknown) =>
        error instanceof AccError &&
        error.code === "ACC_INVALID" &&
        error.message === `invalid ${key} limit ${JSON.stringify(value)} in acc set`,
      `${key}=${value}`,
    );
  }
});

test("parseLimitArgs: KEY=VALUE, none is null (overrides the model), an unknown key is refused", () => {
  assert.deepEqual(parseLimitArgs(["memory=64M", "pids=none"], "--limit"), {
    memory: 64 * 1024 ** 2,
    pids: null,
  });
  assert.throws(() => parseLimitArgs(["disk=1G"], "--limit"), /invalid limit "disk=1G" in --limit/);
  assert.throws(() => parseLimitArgs(["memory"], "--limit"), /invalid limit "memory"/);
});

test("effectiveLimits: the instance's own, else the model's, else acc.toml's; null is none", () => {
  const config = { memory: 1024, cpu: 1, pids: 10 };
  const model = { memory: 2048 };
  assert.deepEqual(effectiveLimits(config, model, {}), { memory: 2048, cpu: 1, pids: 10 });
  assert.deepEqual(effectiveLimits(config, model, { memory: 4096, cpu: null }), {
    memory: 4096,
    pids: 10,
  });
});

test("formatLimit writes sizes back in the largest whole unit", () => {
  assert.equal(formatLimit("memory", 512 * 1024 ** 2), "512M");
  assert.equal(formatLimit("memory", 2 * 1024 ** 3), "2G");
  assert.equal(formatLimit("memory", 1000), "1000");
  assert.equal(formatLimit("cpu", 0.5), "0.5");
  assert.equal(formatLimit("pids", undefined), "none");
});
