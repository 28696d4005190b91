// Model commands run as /bin/sh -c runs them (exit status kept): the app's `command` and the
// `[setup] command`. A failing setup fails the create and undoes it; its output goes to the
// instance's log and, on a terminal, to the create's output.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, cp, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { findPostgresBin } from "../src/drivers/postgres/index.js";
import { exec } from "../src/lib/exec.js";
import { ACC_BIN, type AccHome } from "./harness/acc.js";
import { accOk, bootHome, FIXTURE_MODELS, requireRoot, runAcc } from "./harness/attacker.js";
import { makeTempDir, removeDir } from "./harness/common.js";

const skip = requireRoot();

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** What acc's Postgres holds for an instance's database and role, as its superuser sees it. */
async function databaseObjects(acc: AccHome, name: string): Promise<string> {
  const bin = await findPostgresBin(exec, { dataDir: path.join(acc.home, "postgres/data") });
  const sql =
    `select 'db ' || datname from pg_database where datname = 'i_${name}' ` +
    `union all select 'role ' || rolname from pg_roles where rolname = 'i_${name}'`;
  const { stdout } = await exec(
    `${bin}/psql`,
    [
      ...["-X", "-w", "-A", "-t", "-h", path.join(acc.home, "postgres/run")],
      ...["-p", String(acc.env.ACC_POSTGRES_PORT), "-U", "acc", "-d", "postgres", "-c", sql],
    ],
    { cwd: "/", env: { PATH: "/usr/bin:/bin", PGPASSFILE: "/dev/null" }, timeoutMs: 15_000 },
  );
  return stdout.trim();
}

/** Runs acc on a pseudo-terminal (util-linux's script), as a sysadmin at a terminal does. */
function accOnTerminal(acc: AccHome, args: string[]): Promise<{ code: number; output: string }> {
  const line = [process.execPath, ACC_BIN, ...args].map((w) => `'${w}'`).join(" ");
  return new Promise((resolve) => {
    execFile(
      "script",
      ["--quiet", "--return", "--command", line, "/dev/null"],
      { env: acc.env, timeout: 120_000, encoding: "utf8" },
      (error, stdout) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, output: stdout });
      },
    );
  });
}

test("model commands run as the shell runs them", { skip, timeout: 300_000 }, async (t) => {
  const acc = await bootHome(t, ["shell", "echo"]);

  await t.test("`a && exec b` as the command: both run, the app serves", async () => {
    await accOk(acc, ["create", "shell", "--name", "md-sh1"]);
    const answer = await acc.request("md-sh1.localhost");
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.body), { setupA: true, setupB: true });
    const log = await readFile(path.join(acc.home, "logs/md-sh1/app.log"), "utf8");
    for (const line of ["setup-0-out", "setup-0-err", "app-0-word"])
      assert.ok(log.includes(line), log);
  });

  await t.test("setup output is shown on a terminal, not in piped output", async () => {
    const piped = await runAcc(acc, ["create", "shell", "--name", "md-sh2", "--no-start"]);
    assert.equal(piped.code, 0, piped.stderr);
    assert.doesNotMatch(piped.stdout + piped.stderr, /setup-0-out/);
    const shown = await accOnTerminal(acc, ["create", "shell", "--name", "md-sh4", "--no-start"]);
    assert.equal(shown.code, 0, shown.output);
    assert.match(shown.output, /setup-0-out/);
    assert.match(shown.output, /setup-0-err/);
  });

  await t.test("`a; b; exit 3` as the setup: the create fails and leaves nothing", async () => {
    const failed = await runAcc(acc, [
      ...["create", "shell", "--name", "md-sh3", "--param", "setup_exit=3"],
    ]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /setup of md-sh3 failed \(exit status 3\)/);
    assert.match(failed.stderr, /setup-3-out/);
    assert.match(failed.stderr, /setup-3-err/);
    const left = [
      "instances/md-sh3",
      "logs/md-sh3",
      "supervisor/programs/md-sh3.conf",
      "supervisor/conf.d/md-sh3.conf",
      "nginx/sites/md-sh3.conf",
      "nginx/hosts/md-sh3.map",
    ];
    for (const rel of left) assert.equal(await exists(path.join(acc.home, rel)), false, rel);
    const user = await exec("getent", ["passwd", "acc-md-sh3"]).catch((e: unknown) => e);
    assert.ok(user instanceof Error, "no system user acc-md-sh3");
    assert.equal(await databaseObjects(acc, "md-sh3"), "");
    assert.equal((await runAcc(acc, ["show", "md-sh3"])).code, 3);
    const listed = JSON.parse(await accOk(acc, ["list", "--json"])) as { name: string }[];
    assert.deepEqual(listed.map((i) => i.name).sort(), ["md-sh1", "md-sh2", "md-sh4"]);
  });

  await t.test("acc models prune removes the code no instance uses, and only that", async () => {
    await accOk(acc, ["create", "echo", "--name", "md-pr1", "--no-start"]);
    await accOk(acc, ["destroy", "md-pr1", "--yes", "--no-backup"]);
    const code = path.join(acc.home, "code");
    const before = (await readdir(code)).sort();
    const echoCode = before.filter((f) => f.startsWith("echo-1-"));
    assert.equal(echoCode.length, 1, before.join(" "));

    const doctor = await runAcc(acc, ["doctor"]);
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /1 code folder\(s\) .* that no instance uses .*echo-1-/);

    const dry = JSON.parse(await accOk(acc, ["models", "prune", "--dry-run", "--json"])) as {
      removed: { folder: string; bytes: number }[];
      kept: number;
    };
    assert.deepEqual(
      dry.removed.map((f) => f.folder),
      echoCode,
    );
    assert.ok((dry.removed[0]?.bytes ?? 0) > 0);
    assert.equal(dry.kept, 1, "shell's folder is in use");
    assert.deepEqual((await readdir(code)).sort(), before, "--dry-run removes nothing");

    const pruned = await accOk(acc, ["models", "prune"]);
    assert.match(pruned, new RegExp(`removed ${echoCode[0]} \\(`));
    assert.match(pruned, /freed .* \(1 in use kept\)/);
    assert.deepEqual(
      await readdir(code),
      before.filter((f) => !echoCode.includes(f)),
    );
    assert.equal((await acc.request("md-sh1.localhost")).status, 200, "its user still answers");
    assert.match(await accOk(acc, ["models", "prune"]), /no code folder to remove/);

    const bad = await runAcc(acc, ["models", "purge"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown action "purge"/);
  });

  await t.test("a model folder that is a link: its target is copied, never written", async () => {
    const srv = await makeTempDir("acc-md-srv-");
    t.after(() => removeDir(srv));
    const target = path.join(srv, "linked");
    await cp(path.join(FIXTURE_MODELS, "echo"), target, { recursive: true });
    const manifest = await readFile(path.join(target, "model.toml"), "utf8");
    await writeFile(
      path.join(target, "model.toml"),
      manifest.replace('name = "echo"', 'name = "linked"'),
    );
    await symlink(target, path.join(acc.home, "models", "linked"));
    const before = (await readdir(target)).sort();
    await accOk(acc, ["create", "linked", "--name", "md-ln1"]);
    await accOk(acc, ["create", "linked", "--name", "md-ln2"]);
    assert.equal((await acc.request("md-ln2.localhost")).status, 200);
    assert.deepEqual((await readdir(target)).sort(), before, "nothing written into the target");
    const code = (await readdir(path.join(acc.home, "code"))).filter((f) =>
      f.startsWith("linked-"),
    );
    assert.equal(code.length, 1, `one code folder for both: ${code.join(" ")}`);
  });
});
