// A restore is all or nothing: `acc restore` killed (-9, with what it started) at any point,
// then `acc doctor --repair`, leaves the instance with its own data/ and database or with the
// backup's, never one of each, and no staging folder in its folder. A .partial backup is found
// and removed by doctor. restore --as-new renders the new instance for itself.
import assert from "node:assert/strict";
import { cp, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { parseEnvFile } from "../src/core/instance-env.js";
import { stopAccServer, type AccHome } from "./harness/acc.js";
import { instanceDatabaseUrl, queryDatabase } from "./harness/postgres.js";
import {
  accOk,
  backupOf,
  bootHome,
  instanceIdentity,
  instanceView,
  killedAcc,
  nodeAs,
  requireRoot,
  runAcc,
  type Identity,
} from "./harness/attacker.js";

const KILLS = 20;

/** The marker of data/ (a file, as the app writes it) and of the database (a row). */
async function markers(
  acc: AccHome,
  name: string,
  who: Identity,
): Promise<{ file: string | null; row: string | null }> {
  const file = await nodeAs<string | null>(
    who,
    `try { return await fs.readFile(path.join(input, "marker"), "utf8"); } catch { return null; }`,
    path.join(acc.home, "instances", name, "data"),
  );
  const rows = await queryDatabase<{ v: string }>(
    await instanceDatabaseUrl(acc, name),
    "select v from marker",
  );
  return { file, row: rows[0]?.v ?? null };
}

async function setMarkers(acc: AccHome, name: string, who: Identity, value: string): Promise<void> {
  await nodeAs(
    who,
    `await fs.writeFile(path.join(input.dir, "marker"), input.value); return true;`,
    { dir: path.join(acc.home, "instances", name, "data"), value },
  );
  await queryDatabase(await instanceDatabaseUrl(acc, name), `update marker set v = '${value}'`);
}

async function stagedDatabases(acc: AccHome, name: string): Promise<string[]> {
  // The instance's role sees pg_database's names (it is readable by all).
  const rows = await queryDatabase<{ datname: string }>(
    await instanceDatabaseUrl(acc, name),
    `select datname from pg_database where datname in ('r_${name}', 'o_${name}')`,
  );
  return rows.map((r) => r.datname);
}

/** What an instance's folder holds: never a restore's staging or replaced data. */
const INSTANCE_ENTRIES = new Set(["data", "config", "env", "launch"]);

test(
  "restore is atomic; doctor repairs interrupted restores and .partial backups; --as-new renders",
  { timeout: 600_000, skip: requireRoot() },
  async (t) => {
    const acc = await bootHome(t, ["rsdb"]);
    // The CLI does the work itself, so that killing it kills the restore (with acc server up,
    // the server does it, and a killed CLI leaves it to finish).
    await stopAccServer(acc);
    let asNewMs = 0;
    const name = `rsa${process.pid}`;
    await accOk(acc, ["create", "rsdb", "--name", name, "--no-start"]);
    const who = await instanceIdentity(name);
    const url = await instanceDatabaseUrl(acc, name);
    // Enough rows and bytes that pg_restore and tar take a while: kills land inside them too.
    await queryDatabase(
      url,
      "create table marker (v text); insert into marker values ('B');" +
        "create table bulk as select g, md5(g::text) as h from generate_series(1, 60000) g",
    );
    await nodeAs(
      who,
      `for (let i = 0; i < 100; i++) await fs.writeFile(path.join(input, "f" + i), "x".repeat(50000) + i);
       await fs.writeFile(path.join(input, "marker"), "B");
       return true;`,
      path.join(acc.home, "instances", name, "data"),
    );
    const backup = await backupOf(acc, name, { timeoutMs: 120_000 });
    await setMarkers(acc, name, who, "A");
    assert.deepEqual(await markers(acc, name, who), { file: "A", row: "A" });

    // How long a whole restore takes, to spread the kills over it.
    const started = Date.now();
    await accOk(acc, ["restore", name, backup.id], { timeoutMs: 120_000 });
    const duration = Date.now() - started;
    t.diagnostic(`a whole acc restore takes ${duration} ms`);
    assert.deepEqual(await markers(acc, name, who), { file: "B", row: "B" });
    await setMarkers(acc, name, who, "A");

    await t.test(`acc restore killed at ${KILLS} points, then doctor: never a mix`, async () => {
      const outcomes: string[] = [];
      for (let i = 0; i < KILLS; i++) {
        const delay = Math.round((duration * (i + 0.5)) / KILLS);
        const group = i % 2 === 0;
        const { how, cleanup } = await killedAcc(acc, ["restore", name, backup.id], delay, group);
        t.after(cleanup);
        // Every fifth time, no doctor: the instance's next start settles the restore itself.
        const byStart = i % 5 === 4;
        const repair = byStart
          ? await runAcc(acc, ["start", name], { timeoutMs: 60_000 })
          : await runAcc(acc, ["doctor", "--repair"], { timeoutMs: 120_000 });
        const said = repair.stdout + repair.stderr;
        assert.doesNotMatch(said, /this is a bug/, said);
        const found = await markers(acc, name, who);
        assert.equal(
          found.file,
          found.row,
          `killed at ${delay} ms (${how}): data/ says ${found.file}, the database ${found.row}\n${said}`,
        );
        if (/after its commit point/.test(said)) assert.equal(found.row, "B", said);
        if (/before its commit point/.test(said)) assert.equal(found.row, "A", said);
        const entries = await readdir(path.join(acc.home, "instances", name));
        assert.deepEqual(
          entries.filter((e) => !INSTANCE_ENTRIES.has(e)),
          [],
          `killed at ${delay} ms: nothing else in the instance's folder`,
        );
        const restores = await readdir(path.join(acc.home, "restores")).catch(() => []);
        assert.deepEqual(restores, [], `killed at ${delay} ms: no restore left staged`);
        assert.deepEqual(await stagedDatabases(acc, name), [], "no staged database left");
        const explained = /commit point/.test(said) ? " (explained)" : "";
        outcomes.push(`${delay}ms${group ? "" : "(pid)"}:${found.row ?? "none"}${explained}`);
        if (byStart) {
          assert.equal(repair.code, 0, said);
          const page = await acc.request(`${name}.localhost`);
          assert.equal(page.status, 200, page.body);
          assert.equal((JSON.parse(page.body) as { marker: string }).marker, found.file);
          await accOk(acc, ["stop", name], { timeoutMs: 60_000 });
        }
        if (found.row !== "A") await setMarkers(acc, name, who, "A");
      }
      t.diagnostic(`outcomes (delay:marker): ${outcomes.join(" ")}`);
    });

    await t.test("a .partial backup is named by doctor and removed by --repair", async () => {
      const partial = `${backup.dir.replace(/Z$/, "1Z")}.partial`;
      await cp(backup.dir, partial, { recursive: true });
      await writeFile(path.join(partial, "manifest.json"), "");
      const seen = await runAcc(acc, ["doctor"]);
      assert.match(seen.stdout + seen.stderr, new RegExp(`incomplete backup ${partial}`));
      assert.match(seen.stdout + seen.stderr, /remove it/);
      await runAcc(acc, ["doctor", "--repair"]);
      const left = await readdir(path.dirname(partial));
      assert.ok(!left.some((e) => e.endsWith(".partial")), `removed: ${left.join(", ")}`);
      const again = await runAcc(acc, ["doctor"]);
      assert.doesNotMatch(again.stdout + again.stderr, /incomplete backup/);
    });

    await t.test(
      "a restore folder left without its journal (killed as it began or ended) is named as such and removed",
      async () => {
        // What a kill between removing the journal and removing its folder leaves, at the end
        // of a restore that finished: the instance is whole, nothing is to be undone.
        const before = await markers(acc, name, who);
        await mkdir(path.join(acc.home, "restores", name), { recursive: true, mode: 0o700 });
        const seen = await runAcc(acc, ["doctor"]);
        const said = seen.stdout + seen.stderr;
        assert.match(said, new RegExp(`${name}: a restore left its folder .* without a journal`));
        assert.doesNotMatch(said, /commit point/);
        await runAcc(acc, ["doctor", "--repair"]);
        assert.deepEqual(await readdir(path.join(acc.home, "restores")), []);
        assert.deepEqual(await markers(acc, name, who), before);
      },
    );

    await t.test(
      "restore --as-new: rendered for the new instance from the backup's model version",
      async () => {
        // The model moves on after the backup: the backup's version is still in the home.
        const modelFile = path.join(acc.home, "models", "rsdb", "model.toml");
        const model = await readFile(modelFile, "utf8");
        await writeFile(
          modelFile,
          model
            .replace('version = "1"', 'version = "2"')
            .replace('MODEL_VERSION = "1"', 'MODEL_VERSION = "2"'),
        );
        const copy = `rsn${process.pid}`;
        const asNewStarted = Date.now();
        const made = await accOk(acc, ["restore", copy, backup.id, "--as-new"], {
          timeoutMs: 120_000,
        });
        asNewMs = Date.now() - asNewStarted;
        assert.match(made, /rendered from the backup's model version, rsdb 1/);
        const view = await instanceView(acc, copy);
        const original = await instanceView(acc, name);
        assert.notEqual(view.port, original.port);
        assert.equal(view.state, "running");
        const page = JSON.parse((await acc.request(`${copy}.localhost`)).body) as {
          instance: string;
          port: number;
          model_version: string;
          config: string;
          marker: string;
          token: string;
        };
        assert.equal(page.instance, copy);
        assert.equal(page.port, view.port);
        assert.equal(page.model_version, "1");
        assert.equal(
          page.config,
          `name=${copy}\nport=${view.port}\ndata_dir=${path.join(acc.home, "instances", copy, "data")}\n`,
        );
        assert.equal(page.marker, "B", "data/ is the backup's");
        const originalEnv = parseEnvFile(
          await readFile(path.join(acc.home, "instances", name, "env"), "utf8"),
        );
        assert.equal(page.token, originalEnv.PARAM_TOKEN, "the secret parameter is the backup's");
        const copyUrl = await instanceDatabaseUrl(acc, copy);
        assert.notEqual(new URL(copyUrl).password, new URL(url).password, "its own password");
        assert.equal(new URL(copyUrl).username, `i_${copy}`);
        assert.deepEqual(await queryDatabase(copyUrl, "select v from marker"), [{ v: "B" }]);

        // A backup whose model version the home no longer has: the current model, said so.
        const manifestFile = path.join(backup.dir, "manifest.json");
        const manifest = JSON.parse(await readFile(manifestFile, "utf8")) as {
          model_hash: string;
        };
        manifest.model_hash = "0".repeat(64);
        await writeFile(manifestFile, JSON.stringify(manifest));
        const newer = `rsm${process.pid}`;
        const made2 = await accOk(acc, ["restore", newer, backup.id, "--as-new"], {
          timeoutMs: 120_000,
        });
        assert.match(made2, /rendered from the current model, rsdb 2/);
        const page2 = JSON.parse((await acc.request(`${newer}.localhost`)).body) as {
          instance: string;
          model_version: string;
          marker: string;
        };
        assert.equal(page2.instance, newer);
        assert.equal(page2.model_version, "2");
        assert.equal(page2.marker, "B");
      },
    );

    await t.test(
      "acc restore --as-new killed, then doctor: the whole instance or none",
      async () => {
        const outcomes: string[] = [];
        for (let i = 0; i < 4; i++) {
          const copy = `rsk${i}${process.pid}`;
          const delay = Math.round((asNewMs * (i + 0.5)) / 4);
          const { cleanup } = await killedAcc(
            acc,
            ["restore", copy, backup.id, "--as-new"],
            delay,
            true,
          );
          t.after(cleanup);
          const doctor = await runAcc(acc, ["doctor", "--repair"], { timeoutMs: 120_000 });
          const said = doctor.stdout + doctor.stderr;
          assert.doesNotMatch(said, /this is a bug/, said);
          const shown = await runAcc(acc, ["show", copy, "--json"]);
          const folder = path.join(acc.home, "instances", copy);
          if (shown.code === 3) {
            await assert.rejects(readdir(folder), { code: "ENOENT" }, `${copy}: no folder left`);
            await assert.rejects(instanceIdentity(copy), /no user/, `${copy}: no system user left`);
            const user = await runAcc(acc, ["doctor"]);
            assert.doesNotMatch(user.stdout, new RegExp(copy), "doctor finds nothing left of it");
            outcomes.push(`${delay}ms:none`);
          } else {
            assert.equal(shown.code, 0, shown.stderr);
            const copyWho = await instanceIdentity(copy);
            const found = await markers(acc, copy, copyWho);
            assert.deepEqual(found, { file: "B", row: "B" }, `killed at ${delay} ms: ${said}`);
            await accOk(acc, ["start", copy], { timeoutMs: 60_000 });
            const page = JSON.parse((await acc.request(`${copy}.localhost`)).body) as {
              instance: string;
              marker: string;
            };
            assert.deepEqual([page.instance, page.marker], [copy, "B"]);
            await accOk(acc, ["destroy", copy, "--yes", "--no-backup"], { timeoutMs: 60_000 });
            outcomes.push(`${delay}ms:whole`);
          }
          assert.deepEqual(await readdir(path.join(acc.home, "restores")).catch(() => []), []);
        }
        t.diagnostic(`--as-new outcomes: ${outcomes.join(" ")}`);
      },
    );
  },
);
