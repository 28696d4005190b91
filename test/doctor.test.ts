import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { pathExists } from "../src/lib/files.js";
import { ACC_BIN, createAccHome } from "./harness/acc.js";
import { waitFor } from "./harness/common.js";

test(
  "acc killed in the middle of a create: doctor explains it, --repair undoes it",
  { timeout: 120_000 },
  async (t) => {
    const acc = await createAccHome();
    t.after(() => acc.cleanup());
    // A model whose setup step takes long enough to kill acc during the create.
    const model = path.join(acc.home, "models/slowsetup");
    await mkdir(model, { recursive: true });
    await writeFile(
      path.join(model, "model.toml"),
      'name = "slowsetup"\nversion = "1"\ncommand = "sleep 60"\n[health]\npath = "/"\n[setup]\ncommand = "sleep 30"\n',
    );
    await acc.ok(["boot"]);
    const child = spawn(process.execPath, [ACC_BIN, "create", "slowsetup", "--name", "half"], {
      env: acc.env,
      stdio: "ignore",
    });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    await waitFor(
      "the create to reach its setup step",
      async () => {
        const list = JSON.parse(await acc.ok(["list", "--json"])) as {
          name: string;
          state: string;
        }[];
        return list.some((i) => i.name === "half" && i.state === "creating") &&
          (await pathExists(path.join(acc.home, "nginx/sites/half.conf")))
          ? true
          : undefined;
      },
      30_000,
      50,
    );
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
