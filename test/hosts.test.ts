import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { homePaths } from "../src/core/paths.js";
import { createAccHome, type AccHome } from "./harness/acc.js";

const here = import.meta.dirname;

/** nginx's instance files, hashed: a refused change must leave them as they were. */
async function nginxFiles(home: string): Promise<string> {
  const paths = homePaths(home);
  const hash = createHash("sha256");
  for (const dir of [paths.nginxSites, paths.nginxHosts]) {
    for (const file of (await readdir(dir)).sort()) {
      hash.update(file);
      hash.update(await readFile(path.join(dir, file)));
    }
  }
  return hash.digest("hex");
}

async function hostsOf(acc: AccHome, name: string): Promise<string[]> {
  return (JSON.parse(await acc.ok(["show", name, "--json"])) as { hosts: string[] }).hosts;
}

test(
  "acc host add|remove: nginx answers the new host at once; refusals change nothing; a crash half-way is finished by doctor",
  { timeout: 300_000 },
  async (t) => {
    const acc = await createAccHome({
      env: {
        ACC_POSTGRES: "external",
        ACC_POSTGRES_ADMIN_URL: "postgres://nobody@127.0.0.1:1/x",
        ACC_MONITOR_INTERVAL: "1h",
      },
    });
    t.after(() => acc.cleanup());
    await acc.ok(["boot"]);
    await acc.ok(["create", "hello", "--name", "ha1", "--no-start"]);
    await acc.ok(["create", "hello", "--name", "hb1", "--no-start"]);

    const added = await acc.run(["host", "add", "ha1", "Shop.Example.TEST"]);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout.trim(), "ha1 answers ha1.localhost, shop.example.test");
    const woken = await acc.request("shop.example.test", { timeoutMs: 60_000 });
    assert.equal(woken.status, 200, woken.body);
    assert.match(woken.body, /ha1/);
    const events = await acc.ok(["events", "ha1", "--json"]);
    assert.match(
      events,
      /"action":"host","cause":"cli","outcome":"ok".*"message":"added host shop\.example\.test"/,
    );

    // Refused before anything is written: exit 2 (3 for what does not exist), one line that
    // names the value, the store and nginx's files as they were.
    const before = await nginxFiles(acc.home);
    const refusals: [string[], number, RegExp][] = [
      [
        ["host", "add", "hb1", "shop.example.test"],
        2,
        /host shop\.example\.test is already used by instance ha1/,
      ],
      [["host", "add", "ha1", "shop.example.test"], 2, /ha1 already answers shop\.example\.test/],
      [["host", "add", "hb1", "ha1.localhost"], 2, /invalid host name "ha1\.localhost"/],
      [["host", "add", "ha1", "acc.localhost"], 2, /acc's admin host/],
      [["host", "add", "ha1", "default"], 2, /invalid host name "default"/],
      [["host", "add", "ha1", "a b;\n}"], 2, /invalid host name/],
      [["host", "remove", "ha1", "ha1.localhost"], 2, /ha1\.localhost is the host of ha1's URL/],
      [
        ["host", "remove", "ha1", "nothere.example.test"],
        3,
        /ha1 has no host "nothere\.example\.test"/,
      ],
      [["host", "add", "nosuch", "x.example.test"], 3, /no instance named "nosuch"/],
      [["host", "ad", "ha1", "x.example.test"], 2, /unknown action "ad" \(did you mean add\?\)/],
    ];
    for (const [args, code, message] of refusals) {
      const result = await acc.run(args);
      assert.equal(result.code, code, `acc ${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message, `acc ${args.join(" ")}`);
    }
    assert.deepEqual(await hostsOf(acc, "ha1"), ["ha1.localhost", "shop.example.test"]);
    assert.deepEqual(await hostsOf(acc, "hb1"), ["hb1.localhost"]);
    assert.equal(await nginxFiles(acc.home), before);

    // nginx refuses the configuration (a broken file of someone else's): the host is not added.
    const broken = path.join(homePaths(acc.home).nginxSites, "zz-broken.conf");
    await writeFile(broken, "this is not nginx {\n");
    const refused = await acc.run(["host", "add", "hb1", "blog.example.test"]);
    await rm(broken);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /nginx/);
    assert.deepEqual(await hostsOf(acc, "hb1"), ["hb1.localhost"]);
    assert.equal(await nginxFiles(acc.home), before);
    assert.match(
      await acc.ok(["events", "hb1", "--json"]),
      /"action":"host","cause":"cli","outcome":"failed"/,
    );

    const removed = await acc.run(["host", "remove", "ha1", "shop.example.test"]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout.trim(), "ha1 answers ha1.localhost");
    const gone = await acc.request("shop.example.test", { timeoutMs: 30_000 });
    assert.doesNotMatch(gone.body, /ha1/);
    assert.notEqual(gone.status, 200);

    // Killed after the store took the host, before nginx's files were written: doctor names
    // the dead host change and --repair writes nginx's files from the store.
    const child = spawn(
      process.execPath,
      [
        path.join(here, "store-child.js"),
        path.join(acc.home, "state.db"),
        "hb1",
        "host",
        JSON.stringify(["hb1.localhost", "late.example.test"]),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [ready] = (await once(child.stdout, "data")) as [Buffer];
    assert.equal(ready.toString(), "held\n");
    child.kill("SIGKILL");
    await once(child, "exit");
    const before404 = await acc.request("late.example.test", { timeoutMs: 30_000 });
    assert.doesNotMatch(before404.body, /hb1/);
    const diagnosis = await acc.run(["doctor"]);
    assert.equal(diagnosis.code, 1, diagnosis.stdout + diagnosis.stderr);
    assert.match(
      diagnosis.stdout,
      /hb1: host by pid \d+ .* died before it finished -> write its nginx files from the store again/,
    );
    const repaired = await acc.run(["doctor", "--repair"]);
    assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
    const late = await acc.request("late.example.test", { timeoutMs: 60_000 });
    assert.equal(late.status, 200, late.body);
    assert.match(late.body, /hb1/);
    assert.equal((await acc.run(["doctor"])).code, 0);
  },
);
