import assert from "node:assert/strict";
import { chmod, stat } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { Client, type ClientConfig } from "pg";
import {
  createPgAdmin,
  type InstanceDatabase,
  type PgAdmin,
} from "../src/drivers/postgres/index.js";
import { isAccError } from "../src/lib/errors.js";
import { exec } from "../src/lib/exec.js";
import { freePort } from "./harness/common.js";
import { startTestPostgres } from "./harness/postgres.js";

/** Runs fn on a connection opened with config, and closes it. */
async function withClient<T>(config: ClientConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ ...config, connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function query(url: string, text: string): Promise<Record<string, unknown>[]> {
  return withClient(
    { connectionString: url },
    async (c) => (await c.query<Record<string, unknown>>(text)).rows,
  );
}

/** The URL of the same credentials aimed at another database. */
function otherDatabase(db: InstanceDatabase, database: string): string {
  return db.url.replace(/\/[^/]*$/, `/${database}`);
}

function isUnreachable(port: number) {
  return (error: unknown): boolean =>
    isAccError(error, "ACC_FAILED") &&
    error.message.startsWith("Postgres is not reachable at ") &&
    error.message.includes(String(port)) &&
    error.hint !== undefined;
}

test("postgres driver on a real cluster", async (t) => {
  const pg = await startTestPostgres(t);
  if (!pg) return;
  const { admin } = pg;

  let a: InstanceDatabase | undefined;
  let b: InstanceDatabase | undefined;

  await t.test("create: a role and database per instance, '-' in names", async () => {
    a = await admin.createInstanceDatabase("app-a");
    b = await admin.createInstanceDatabase("b");
    assert.equal(a.role, "i_app-a");
    assert.equal(a.database, "i_app-a");
    assert.equal(a.host, "127.0.0.1");
    assert.equal(a.port, pg.port);
    assert.match(a.password, /^[A-Za-z0-9_-]{32}$/);
    const rows = await query(a.url, "select current_user as u, current_database() as d");
    assert.deepEqual(rows, [{ u: "i_app-a", d: "i_app-a" }]);
    await query(a.url, "create table notes (id int primary key, body text)");
    await query(a.url, "insert into notes values (1, 'one'), (2, 'two')");
    assert.deepEqual(await admin.listInstanceDatabases(), {
      databases: ["app-a", "b"],
      roles: ["app-a", "b"],
    });
  });

  await t.test("A's credentials open A's database and no other", async () => {
    assert.ok(a && b);
    for (const database of [b.database, "postgres", "template1"]) {
      await assert.rejects(query(otherDatabase(a, database), "select 1"), (error: unknown) => {
        assert.match(String(error), /no pg_hba\.conf entry|permission denied/);
        return true;
      });
    }
    // The privilege is gone too, not only the pg_hba line.
    const rows = await withClient(pg.adminConnection, async (c) => {
      const result = await c.query<{ other: boolean; own: boolean }>(
        `select has_database_privilege('i_app-a', 'i_b', 'CONNECT') as other,
                has_database_privilege('i_app-a', 'i_app-a', 'CONNECT') as own`,
      );
      return result.rows;
    });
    assert.deepEqual(rows, [{ other: false, own: true }]);
    await assert.rejects(
      query(a.url.replace(encodeURIComponent(a.password), "wrong"), "select 1"),
      /password authentication failed/,
    );
  });

  await t.test("create again: same password keeps working, data is kept", async () => {
    assert.ok(a);
    const again = await admin.createInstanceDatabase("app-a", { password: a.password });
    assert.equal(again.url, a.url);
    assert.deepEqual(await query(a.url, "select count(*)::int as n from notes"), [{ n: 2 }]);
  });

  await t.test("dump, drop the table, restore: the rows are back", async () => {
    assert.ok(a);
    const file = path.join(pg.dir, "app-a.dump");
    await admin.dump("app-a", file);
    assert.ok((await stat(file)).size > 0);
    await query(a.url, "drop table notes");
    await query(a.url, "create table junk (x int)");
    await admin.stageRestore("app-a", file);
    // Staged beside it: the instance's own database is untouched until the commit.
    assert.deepEqual(await query(a.url, "select count(*)::int as n from junk"), [{ n: 0 }]);
    await admin.commitRestore("app-a");
    await admin.commitRestore("app-a");
    assert.deepEqual(await query(a.url, "select id, body from notes order by id"), [
      { id: 1, body: "one" },
      { id: 2, body: "two" },
    ]);
    const owners = await query(
      a.url,
      "select tableowner as o from pg_tables where schemaname = 'public' order by tablename",
    );
    // The database is the backup's as a whole: the table made since is gone.
    assert.deepEqual(owners, [{ o: "i_app-a" }], "restored objects are the role's");
    // Into another instance's database too (a clone): the objects become that role's.
    assert.ok(b);
    await admin.stageRestore("b", file);
    await admin.commitRestore("b");
    assert.deepEqual(await query(b.url, "select count(*)::int as n from notes"), [{ n: 2 }]);
    // An undone restore leaves the instance's database as it was, and no staged one.
    await query(b.url, "insert into notes values (3, 'three')");
    await admin.stageRestore("b", file);
    await admin.abortRestore("b");
    await admin.abortRestore("b");
    assert.deepEqual(await query(b.url, "select count(*)::int as n from notes"), [{ n: 3 }]);
    await withClient(pg.adminConnection, async (c) => {
      const left = await c.query(
        "select datname from pg_database where datname in ('r_b', 'o_b', 'r_app-a', 'o_app-a')",
      );
      assert.deepEqual(left.rows, [], "no staged nor replaced database is left");
    });
  });

  await t.test("drop: ends sessions, removes database and role; twice is fine", async () => {
    assert.ok(b);
    const held = new Client({ connectionString: b.url });
    held.on("error", () => undefined);
    await held.connect();
    try {
      assert.deepEqual(await admin.dropInstanceDatabase("b"), { database: true, role: true });
    } finally {
      await held.end();
    }
    assert.deepEqual(await admin.dropInstanceDatabase("b"), { database: false, role: false });
    assert.deepEqual(await admin.listInstanceDatabases(), {
      databases: ["app-a"],
      roles: ["app-a"],
    });
    // With the role gone, no pg_hba line matches it any more.
    await assert.rejects(
      query(b.url, "select 1"),
      /no pg_hba\.conf entry for host "127\.0\.0\.1", user "i_b"/,
    );
  });

  await t.test("an admin that is not superuser; a failed create leaves no role", async () => {
    // samerole in pg_hba lets a role reach the database of its own name only.
    await withClient(pg.adminConnection, async (c) => {
      await c.query("create role acc_admin login createrole password 'admin-pw'");
      await c.query("create database acc_admin owner acc_admin");
    });
    const external: PgAdmin = createPgAdmin({
      connection: `postgresql://acc_admin:admin-pw@127.0.0.1:${pg.port}/acc_admin`,
      exec,
      bin: pg.bin,
    });
    await assert.rejects(
      external.createInstanceDatabase("orphan"),
      /permission denied to create database/,
    );
    assert.deepEqual((await admin.listInstanceDatabases()).roles, ["app-a"], "no orphan role");

    await withClient(pg.adminConnection, (c) => c.query("alter role acc_admin createdb"));
    const made = await external.createInstanceDatabase("ext-1");
    await query(made.url, "create table t (x int)");
    await query(made.url, "insert into t values (7)");
    const file = path.join(pg.dir, "ext-1.dump");
    await external.dump("ext-1", file);
    await query(made.url, "delete from t");
    // This cluster's pg_hba (samerole) lets a TCP login reach only the database of a role it is
    // in; an external server usually lets its admin reach any: a role of the staged database's
    // name stands for that here.
    await withClient(pg.adminConnection, async (c) => {
      await c.query('create role "r_ext-1" nologin');
      await c.query('grant "r_ext-1" to acc_admin');
    });
    await external.stageRestore("ext-1", file);
    await external.commitRestore("ext-1");
    assert.deepEqual(await query(made.url, "select x from t"), [{ x: 7 }]);
    // A restore staged and never committed (a crash): the drop takes its database too.
    await external.stageRestore("ext-1", file);
    assert.deepEqual(await external.dropInstanceDatabase("ext-1"), { database: true, role: true });
  });

  await t.test("init again on a running cluster: kept, config rewritten, modes fixed", async () => {
    await chmod(pg.managed.layout.socket, 0o755);
    assert.deepEqual(await pg.managed.init(), { created: false });
    await admin.reloadConfig();
    for (const dir of [pg.managed.layout.root, pg.managed.layout.data, pg.managed.layout.socket]) {
      const info = await stat(dir);
      assert.equal(info.mode & 0o777, 0o700, dir);
      if (pg.postgresUser) assert.equal(info.uid, pg.postgresUser.uid, dir);
    }
    assert.deepEqual(await admin.listInstanceDatabases(), {
      databases: ["app-a"],
      roles: ["app-a"],
    });
  });

  await t.test("Postgres down: one clear error, for every call", async () => {
    const port = await freePort();
    const nowhere = createPgAdmin({
      connection: { host: "127.0.0.1", port, user: "acc", database: "postgres" },
      exec,
      bin: pg.bin,
    });
    await assert.rejects(nowhere.ping(), isUnreachable(port));
    await assert.rejects(nowhere.createInstanceDatabase("x"), isUnreachable(port));
    await assert.rejects(nowhere.dropInstanceDatabase("x"), isUnreachable(port));
    await assert.rejects(nowhere.dump("x", path.join(pg.dir, "x.dump")), isUnreachable(port));

    // The real cluster, stopped: its socket is gone.
    await pg.stop();
    await assert.rejects(admin.ping(), (error: unknown) => {
      assert.ok(isAccError(error, "ACC_FAILED"));
      assert.equal(
        error.message.split(":")[0],
        `Postgres is not reachable at ${pg.managed.layout.socket}/.s.PGSQL.${pg.port}`,
      );
      return true;
    });
    await assert.rejects(admin.createInstanceDatabase("late"), isUnreachable(pg.port));
  });
});
