import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFile, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import pg from "pg";
import { parseEnvFile } from "../src/core/instance-env.js";
import { createSupervisorClient } from "../src/drivers/supervisord/client.js";
import { ACC_BIN, createAccHome, type AccHome } from "./harness/acc.js";
import { entries, sign } from "./harness/guestbook.js";

async function envOf(acc: AccHome, name: string): Promise<Record<string, string>> {
  return parseEnvFile(await readFile(path.join(acc.home, "instances", name, "env"), "utf8"));
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Stops or starts acc's managed Postgres under its supervisord, as a crash would. */
async function postgresService(acc: AccHome, action: "stop" | "start"): Promise<void> {
  const rpc = createSupervisorClient({ socketPath: path.join(acc.home, "run/supervisor.sock") });
  await rpc.call(
    action === "stop" ? "supervisor.stopProcess" : "supervisor.startProcess",
    ["acc-postgres", true],
    { timeoutMs: 60_000 },
  );
}

test(
  "guestbook on Postgres: entries, isolation, backups, restore, Postgres down",
  { timeout: 300_000 },
  async (t) => {
    const acc = await createAccHome();
    t.after(() => acc.cleanup());
    await acc.ok(["boot"]);

    await t.test(
      "create with a param, POST an entry through nginx, it survives stop and start",
      async () => {
        const created = JSON.parse(
          await acc.ok([
            "create",
            "guestbook",
            "--name",
            "gb-a",
            "--param",
            "admin_email=ops@acme.example",
            "--json",
          ]),
        ) as {
          generated: Record<string, string>;
        };
        assert.ok(
          (created.generated.admin_password ?? "").length >= 20,
          "the admin password was generated",
        );
        await sign(acc, "gb-a", "Ann", "first!");
        assert.deepEqual(await entries(acc, "gb-a"), ["Ann: first!"]);
        await acc.ok(["stop", "gb-a"]);
        await acc.ok(["start", "gb-a"]);
        assert.deepEqual(await entries(acc, "gb-a"), ["Ann: first!"]);
      },
    );

    await t.test("bad admin_email is refused before anything is made", async () => {
      const bad = await acc.run([
        "create",
        "guestbook",
        "--name",
        "gb-bad",
        "--param",
        "admin_email=not-an-email",
      ]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /admin_email/);
      const missing = await acc.run(["create", "guestbook", "--name", "gb-bad"]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /admin_email/);
    });

    await t.test(
      "isolation: an instance's credentials cannot reach another's database",
      async () => {
        await acc.ok([
          "create",
          "guestbook",
          "--name",
          "gb-b",
          "--param",
          "admin_email=b@acme.example",
        ]);
        const a = await envOf(acc, "gb-a");
        const b = await envOf(acc, "gb-b");
        assert.equal(await canConnect(a.DATABASE_URL ?? ""), true);
        const aIntoB = new URL(a.DATABASE_URL ?? "");
        aIntoB.pathname = `/${b.PGDATABASE ?? ""}`;
        assert.equal(
          await canConnect(aIntoB.toString()),
          false,
          "A's role cannot open B's database",
        );
        const aIntoPostgres = new URL(a.DATABASE_URL ?? "");
        aIntoPostgres.pathname = "/postgres";
        assert.equal(
          await canConnect(aIntoPostgres.toString()),
          false,
          "nor the postgres database",
        );
      },
    );

    await t.test("acc db opens psql as the instance's own role", () => {
      const psql = spawnSync(process.execPath, [ACC_BIN, "db", "gb-b"], {
        env: acc.env,
        input: "SELECT current_user, current_database();\n",
        encoding: "utf8",
        timeout: 30_000,
      });
      assert.equal(psql.status, 0, psql.stderr);
      assert.match(psql.stdout, /i_gb-b\s*\|\s*i_gb-b/);
    });

    await t.test("backup, destroy, restore --as-new: the entry is there", async () => {
      const backup = JSON.parse(await acc.ok(["backup", "gb-a", "--json"])) as { backup: string };
      assert.deepEqual((await readdir(backup.backup)).sort(), [
        "data.tar.gz",
        "database.dump",
        "env",
        "manifest.json",
      ]);
      const before = await envOf(acc, "gb-a");
      const destroyed = JSON.parse(await acc.ok(["destroy", "gb-a", "--yes", "--json"])) as {
        backup: string;
      };
      assert.ok(destroyed.backup.includes("/backups/gb-a/"));
      assert.equal(
        await canConnect(before.DATABASE_URL ?? ""),
        false,
        "its role and database were dropped",
      );
      const id = path.relative(path.join(acc.home, "backups"), destroyed.backup);
      await acc.ok(["restore", "gb-c", id, "--as-new"]);
      assert.deepEqual(await entries(acc, "gb-c"), ["Ann: first!"]);
    });

    await t.test("restore into an existing instance brings its entries back", async () => {
      const backup = JSON.parse(await acc.ok(["backup", "gb-c", "--json"])) as { backup: string };
      await sign(acc, "gb-c", "Bob", "later");
      assert.equal((await entries(acc, "gb-c")).length, 2);
      await acc.ok(["restore", "gb-c", path.basename(backup.backup)]);
      assert.deepEqual(await entries(acc, "gb-c"), ["Ann: first!"]);
    });

    await t.test("a damaged backup is refused at restore", async () => {
      const backup = JSON.parse(await acc.ok(["backup", "gb-c", "--json"])) as { backup: string };
      await appendFile(path.join(backup.backup, "database.dump"), "garbage");
      const refused = await acc.run(["restore", "gb-c", path.basename(backup.backup)]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /damaged: the checksum of database.dump does not match/);
      assert.deepEqual(await entries(acc, "gb-c"), ["Ann: first!"]);
    });

    await t.test("Postgres down: create fails cleanly and destroy removes nothing", async () => {
      await postgresService(acc, "stop");
      try {
        const create = await acc.run([
          "create",
          "guestbook",
          "--name",
          "gb-down",
          "--param",
          "admin_email=d@acme.example",
        ]);
        assert.equal(create.code, 1);
        assert.match(create.stderr, /Postgres is not reachable/);
        assert.equal((await acc.run(["show", "gb-down"])).code, 3, "no instance row");
        const leftovers = [
          ...(await readdir(path.join(acc.home, "instances"))),
          ...(await readdir(path.join(acc.home, "nginx/sites"))),
          ...(await readdir(path.join(acc.home, "supervisor/programs"))),
        ].filter((f) => f.startsWith("gb-down"));
        assert.deepEqual(leftovers, []);

        const destroy = await acc.run(["destroy", "gb-b", "--yes", "--no-backup"]);
        assert.equal(destroy.code, 1);
        assert.match(destroy.stderr, /Postgres is not reachable/);
        assert.equal(
          (JSON.parse(await acc.ok(["show", "gb-b", "--json"])) as { name: string }).name,
          "gb-b",
        );
      } finally {
        await postgresService(acc, "start");
      }
      // And nothing of gb-down was left in Postgres: creating it now works.
      await acc.ok([
        "create",
        "guestbook",
        "--name",
        "gb-down",
        "--param",
        "admin_email=d@acme.example",
        "--no-start",
      ]);
    });
  },
);
