import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { parseEnvFile, renderEnvFile, shellQuote } from "./instance-env.js";

const nasty = [
  "plain",
  "it's",
  "a;b",
  "$(touch /tmp/pwned)",
  "`id`",
  "line1\nline2",
  "{x}",
  '"q"',
  "ünïcode ✓",
  " spaced ",
  "\\",
  "x".repeat(10_000),
];

test("env file values survive a real shell unchanged and run nothing", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "acc-env-"));
  try {
    const vars: Record<string, string> = {};
    nasty.forEach((value, i) => (vars[`V${i}`] = value));
    const file = path.join(dir, "env");
    writeFileSync(file, renderEnvFile(vars));
    const script = `set -a; . ${shellQuote(file)}; set +a; exec node -e 'process.stdout.write(JSON.stringify(process.env))'`;
    const env = JSON.parse(
      execFileSync("/bin/sh", ["-c", script], {
        encoding: "utf8",
        env: { PATH: process.env.PATH },
      }),
    ) as Record<string, string>;
    for (const [key, value] of Object.entries(vars)) assert.equal(env[key], value, key);
    assert.deepEqual(parseEnvFile(renderEnvFile(vars)), vars);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad env names and NUL bytes are refused", () => {
  assert.throws(() => renderEnvFile({ "A B": "x" }), /bad environment variable name/);
  assert.throws(() => renderEnvFile({ "A;rm": "x" }), /bad environment variable name/);
  assert.throws(() => renderEnvFile({ A: "x\0y" }), /NUL/);
});
