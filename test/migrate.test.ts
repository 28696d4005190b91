// acc boot moves instances made by an older acc (their folder the instance user's own, with its
// config, logs and launcher inside) to today's layout, without losing their data, secrets or
// log, and without following anything the instance planted there while it owned the folder.
import assert from "node:assert/strict";
import { chown, chmod, lstat, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { parseEnvFile } from "../src/core/instance-env.js";
import { instancePaths } from "../src/core/paths.js";
import { renderProgram } from "../src/drivers/supervisord/render.js";
import { pathExists } from "../src/lib/files.js";
import {
  accOk,
  bootHome,
  instanceIdentity,
  instanceView,
  requireRoot,
  runAcc,
  trapFor,
  type Identity,
} from "./harness/attacker.js";

const skip = requireRoot();

/** Turns an instance back into what acc 0.1 made of it. */
async function oldLayout(home: string, name: string, who: Identity): Promise<void> {
  const p = instancePaths(home, name);
  const own = (file: string): Promise<void> => chown(file, who.uid, who.gid);
  await chown(p.root, who.uid, who.gid);
  await chmod(p.root, 0o700);
  await own(p.env);
  await chmod(p.env, 0o600);
  await rm(p.launch);
  await own(p.config);
  await mkdir(path.join(p.root, "logs"), { mode: 0o700 });
  await own(path.join(p.root, "logs"));
  await writeFile(path.join(p.root, "logs/app.log"), "a line from before the upgrade\n");
  await own(path.join(p.root, "logs/app.log"));
  await writeFile(path.join(p.root, "run.sh"), "#!/bin/sh\nexit 1\n", { mode: 0o700 });
  await own(path.join(p.root, "run.sh"));
  await writeFile(
    path.join(home, "supervisor/programs", `${name}.conf`),
    renderProgram({
      name,
      command: ["/usr/bin/env", "-i", "/bin/sh", path.join(p.root, "run.sh")],
      directory: "/",
      user: who.user,
      logFile: path.join(p.root, "logs/app.log"),
      stopTimeoutSec: 5,
    }),
  );
}

test(
  "acc boot moves instances of the old layout to the new one, data, secrets and log kept",
  { skip, timeout: 240_000 },
  async (t) => {
    const acc = await bootHome(t, []);
    const trap = await trapFor(t);
    await accOk(acc, ["create", "hello", "--name", "mgold"]);
    await acc.request("mgold.localhost");
    assert.match((await acc.request("mgold.localhost")).body, /visited 2 times/);
    await accOk(acc, ["create", "hello", "--name", "mglinked", "--no-start"]);
    await accOk(acc, ["shutdown"]);
    const old = await instanceIdentity("mgold");
    const linked = await instanceIdentity("mglinked");
    const secretsBefore = parseEnvFile(
      await readFile(instancePaths(acc.home, "mgold").env, "utf8"),
    );
    await oldLayout(acc.home, "mgold", old);
    await oldLayout(acc.home, "mglinked", linked);
    // What the instance could do while it owned its folder: its env and config replaced by links.
    const p = instancePaths(acc.home, "mglinked");
    const target = await trap.secret("secret", "not yours");
    await rm(p.env);
    await symlink(target, p.env);
    await rm(p.config, { recursive: true });
    await symlink(await trap.folder("config"), p.config);
    await trap.seal();

    const boot = await runAcc(acc, ["boot"], { timeoutMs: 120_000 });
    assert.equal(boot.code, 1, "one instance could not be migrated");
    assert.match(boot.stdout, /moved to the current folder layout: mgold$/m);
    assert.match(boot.stdout, /could not migrate mglinked: .*env/);
    assert.deepEqual(await trap.changes(), [], "nothing was followed into the trap");

    const q = instancePaths(acc.home, "mgold");
    const root = await lstat(q.root);
    assert.deepEqual([root.uid, root.gid, root.mode & 0o777], [0, old.gid, 0o750]);
    const env = await lstat(q.env);
    assert.deepEqual([env.uid, env.mode & 0o777], [0, 0o640]);
    assert.deepEqual(
      parseEnvFile(await readFile(q.env, "utf8")),
      { ...secretsBefore, HOME: q.data },
      "the same environment (secrets kept), but HOME, now its data folder",
    );
    for (const gone of ["logs", "run.sh", ".old-logs", ".old-config", ".old-run.sh"]) {
      assert.equal(await pathExists(path.join(q.root, gone)), false, gone);
    }
    assert.ok(await pathExists(q.launch));
    assert.match(await readFile(`${q.appLog}.old`, "utf8"), /a line from before the upgrade/);
    const program = await readFile(path.join(acc.home, "supervisor/programs/mgold.conf"), "utf8");
    assert.match(program, /acc-launch/);
    assert.doesNotMatch(program, /user=/);

    // It runs the new way, with its data.
    const answer = await acc.request("mgold.localhost");
    assert.equal(answer.status, 200);
    assert.match(answer.body, /visited 3 times/);
    assert.equal((await instanceView(acc, "mgold")).state, "running");
    // Migrating again changes nothing.
    const again = await runAcc(acc, ["boot"], { timeoutMs: 120_000 });
    assert.doesNotMatch(again.stdout, /moved to the current folder layout/);
  },
);
