import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { pathExists } from "../src/lib/files.js";
import {
  ACC_BIN,
  accServerPid,
  createAccHome,
  stopAccServer,
  type AccHome,
} from "./harness/acc.js";
import { waitFor } from "./harness/common.js";

/** A model whose setup step takes long enough to kill acc during the create. */
async function slowSetupModel(acc: AccHome): Promise<void> {
  const model = path.join(acc.home, "models/slowsetup");
  await mkdir(model, { recursive: true });
  await writeFile(
    path.join(model, "model.toml"),
    'name = "slowsetup"\nversion = "1"\ncommand = "sleep 60"\n[health]\npath = "/"\n[setup]\ncommand = "sleep 30"\n',
  );
}

async function untilSetupRuns(acc: AccHome, name: string): Promise<void> {
  await waitFor(
    "the create to reach its setup step",
    async () => {
      const list = JSON.parse(await acc.ok(["list", "--json"])) as {
        name: string;
        state: string;
      }[];
      return list.some((i) => i.name === name && i.state === "creating") &&
        (await pathExists(path.join(acc.home, `nginx/sites/${name}.conf`)))
        ? true
        : undefined;
    },
    30_000,
    50,
  );
}

test(
  "acc killed in the middle of a create: doctor explains it, --repair undoes it",
  { timeout: 120_000 },
  async (t) => {
    const acc = await createAccHome();
    t.after(() => acc.cleanup());
    await slowSetupModel(acc);
    await acc.ok(["boot"]);
    // The CLI does the work itself (acc server down), so that killing it kills the create.
    await stopAccServer(acc);
    const child = spawn(process.execPath, [ACC_BIN, "create", "slowsetup", "--name", "half"], {
      env: acc.env,
      stdio: "ignore",
    });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    await untilSetupRuns(acc, "half");
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));

    const found = await acc.run(["doctor"]);
    assert.equal(found.code, 1, "doctor exits 1 while something is half-made");
    assert.match(found.stdout, /half: a create was interrupted -> undo it/);

    // Leftovers of another kind: an instance folder whose row is gone keeps its data.
    await mkdir(path.join(acc.home, "instances/lost/data"), { recursive: true });
    await writeFile(path.join(acc.home, "instances/lost/data/precious"), "keep me");

    const repaired = await acc.run(["doctor", "--repair", "--json"]);
    assert.equal(repaired.code, 0, repaired.stderr);
    const findings = JSON.parse(repaired.stdout) as { problem: string; repaired: boolean }[];
    assert.ok(findings.some((f) => f.problem.startsWith("half:") && f.repaired));
    assert.deepEqual(JSON.parse(await acc.ok(["list", "--json"])), []);
    assert.equal(await pathExists(path.join(acc.home, "nginx/sites/half.conf")), false);
    assert.equal(await pathExists(path.join(acc.home, "supervisor/programs/half.conf")), false);
    assert.equal(await pathExists(path.join(acc.home, "instances/half")), false);
    assert.equal(await pathExists(path.join(acc.home, "instances/lost")), false);
    const moved = await readdir(path.join(acc.home, "backups/lost"));
    assert.equal(moved.length, 1);
    assert.ok(
      await pathExists(path.join(acc.home, "backups/lost", moved[0]!, "data/precious")),
      "the orphan's data was moved, not deleted",
    );

    const clean = await acc.run(["doctor"]);
    assert.equal(clean.code, 0);
    assert.match(clean.stdout, /all is well/);
  },
);

test(
  "acc server killed in the middle of a create made through the API: doctor explains it, --repair undoes it",
  { timeout: 120_000 },
  async (t) => {
    const acc = await createAccHome();
    t.after(() => acc.cleanup());
    await slowSetupModel(acc);
    await acc.ok(["boot"]);
    // With acc server up, the CLI is its client: the create runs in the server.
    const client = acc.run(["create", "slowsetup", "--name", "halfapi"], { timeoutMs: 60_000 });
    await untilSetupRuns(acc, "halfapi");
    process.kill(await accServerPid(acc), "SIGKILL");
    const ended = await client;
    assert.equal(ended.code, 1, "the client says the server went away");
    assert.match(ended.stderr, /acc:/);
    assert.equal(ended.stderr.trim().split("\n").length, 1, ended.stderr);

    // supervisord starts acc server again; the create stays interrupted until doctor undoes it.
    const found = await acc.run(["doctor"]);
    assert.equal(found.code, 1, found.stdout);
    assert.match(found.stdout, /halfapi: a create was interrupted -> undo it/);
    const repaired = await acc.run(["doctor", "--repair"]);
    assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
    assert.deepEqual(JSON.parse(await acc.ok(["list", "--json"])), []);
    assert.equal(await pathExists(path.join(acc.home, "instances/halfapi")), false);
  },
);
