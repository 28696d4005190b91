import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { hasControlCharacter } from "../src/core/model-params.js";
import { createAccHome, type AccHome } from "./harness/acc.js";
import { HOSTILE, UNROUTABLE_HOSTS } from "./harness/hostile.js";

/** Every file under home with its content hash, except the store's WAL side files. */
async function snapshot(dir: string, base = dir): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const rel = path.relative(base, full);
    if (entry.isDirectory()) Object.assign(out, await snapshot(full, base), { [`${rel}/`]: "dir" });
    else if (!/state\.db(-wal|-shm)?$/.test(entry.name)) {
      out[rel] = createHash("sha256")
        .update(await readFile(full))
        .digest("hex");
    }
  }
  return out;
}

async function storeView(acc: AccHome): Promise<string> {
  return (await acc.ok(["list", "--json"])) + (await stat(path.join(acc.home, "state.db"))).size;
}

test(
  "bad input: one line naming the value, exit 2, nothing written",
  { timeout: 120_000 },
  async (t) => {
    const acc = await createAccHome();
    t.after(() => acc.cleanup());
    const before = await snapshot(acc.home);
    const storeBefore = await storeView(acc);

    const cases: string[][] = [];
    for (const value of HOSTILE) {
      cases.push(["create", "hello", "--name", value, "--no-start"]);
      cases.push(["create", "hello", "--name", "okname", "--host", value, "--no-start"]);
      // A string parameter may hold ; { } $ quotes and the like (the env file quotes them, see
      // core/instance-env.test.ts); control characters and over-long values are refused.
      if (hasControlCharacter(value) || value.length > 1024) {
        cases.push([
          "create",
          "hello",
          "--name",
          "okname",
          "--param",
          `greeting=${value}`,
          "--no-start",
        ]);
      }
      cases.push(["create", "hello", "--name", "okname", "--idle-timeout", value, "--no-start"]);
    }
    // hz: were one accepted, the instance's system user must not clash with other tests'.
    for (const host of UNROUTABLE_HOSTS)
      cases.push(["create", "hello", "--name", "hzbad", "--host", host, "--no-start"]);
    // acc's admin host (admin_host, acc.localhost here) and its first label are acc's.
    cases.push(["create", "hello", "--name", "acc", "--no-start"]);
    cases.push(["create", "hello", "--name", "hzbad", "--host", "acc.localhost", "--no-start"]);
    cases.push(["restore", "acc", "nosuchbackup", "--as-new"]);
    cases.push(["create", "hello", "--name", "okname", "--param", "nosuchparam=1", "--no-start"]);
    cases.push(["create", "hello", "--name", "okname", "--param", "noequals", "--no-start"]);
    cases.push(["create", "hello", "--name", "Upper", "--no-start"]);
    cases.push(["create", "hello", "--bogus-option"]);
    cases.push(["start"]);
    cases.push(["start", "a", "b"]);
    cases.push(["start", "foo;bar"]);
    cases.push(["destroy", "../x", "--yes"]);
    cases.push(["logs", "ok", "-n", "ten"]);
    cases.push(["init", "--http-port", "99999"]);
    cases.push(["init", "--domain", "bad domain"]);
    cases.push(["nosuchcommand"]);

    for (const args of cases) {
      const result = await acc.run(args);
      const label = JSON.stringify(args).slice(0, 120);
      assert.equal(
        result.code,
        2,
        `${label}: exit ${result.code}, stderr ${result.stderr.slice(0, 300)}`,
      );
      const lines = result.stderr.trimEnd().split("\n");
      assert.equal(
        lines.length,
        1,
        `${label}: one line, got ${JSON.stringify(result.stderr.slice(0, 300))}`,
      );
      assert.ok(lines[0]!.length < 400, `${label}: short line`);
      assert.match(lines[0]!, /^acc: /, label);
      assert.equal(result.stdout, "", `${label}: nothing on stdout`);
      const host = args.includes("--host") ? args[args.indexOf("--host") + 1] : undefined;
      if (host !== undefined && UNROUTABLE_HOSTS.includes(host))
        assert.ok(lines[0]!.includes(JSON.stringify(host)), `${label}: names the host`);
    }
    const reserved = await acc.run(["create", "hello", "--name", "acc", "--no-start"]);
    assert.match(reserved.stderr, /"acc": reserved for acc's admin host acc\.localhost/);
    const adminHost = await acc.run([
      "create",
      "hello",
      "--name",
      "hzbad",
      "--host",
      "Acc.Localhost",
      "--no-start",
    ]);
    assert.match(adminHost.stderr, /"Acc.Localhost": it is acc's admin host/);
    // A bad value is named in the error (shortened when long).
    const named = await acc.run(["create", "hello", "--name", "foo;bar"]);
    assert.match(named.stderr, /"foo;bar"/);
    const param = await acc.run([
      "create",
      "hello",
      "--name",
      "okname",
      "--param",
      "greeting=a\nb",
    ]);
    assert.match(param.stderr, /greeting/);

    assert.deepEqual(await snapshot(acc.home), before, "no file under home changed");
    assert.equal(await storeView(acc), storeBefore, "the store did not change");

    const unknownModel = await acc.run(["create", "nosuchmodel"]);
    assert.equal(unknownModel.code, 3, "unknown model: not found");
    const unknownInstance = await acc.run(["start", "nosuchinstance"]);
    assert.equal(unknownInstance.code, 3, "unknown instance: not found");
  },
);
