// bench/postgres: median create time of a guestbook instance, split into its database part
// (role + database, measured on the same managed cluster through the same driver call) and the
// rest; then backup and restore times of an instance whose database holds 10,000 entries.
// Usage: node dist/bench/postgres.js [--runs 5] [--entries 10000]
import path from "node:path";
import pg from "pg";
import { parseEnvFile } from "../src/core/instance-env.js";
import { readFile } from "node:fs/promises";
import { createAccHome } from "../test/harness/acc.js";
import { argValue, median, ms, printTable } from "./stats.js";
import { openContext } from "../src/services/open.js";
import { pgAdmin } from "../src/services/databases.js";

const runs = argValue("runs", 5);
const entries = argValue("entries", 10_000);
const root = path.resolve(import.meta.dirname, "../..");

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

const acc = await createAccHome();
try {
  await acc.ok(["boot"]);
  // The first create installs the model's npm dependencies once for its version: not counted.
  await acc.ok([
    "create",
    "guestbook",
    "--name",
    "warm",
    "--param",
    "admin_email=w@example.com",
    "--no-start",
  ]);
  const creates: number[] = [];
  for (let i = 0; i < runs; i++) {
    creates.push(
      await timed(() =>
        acc.ok([
          "create",
          "guestbook",
          "--name",
          `gb${i}`,
          "--param",
          "admin_email=a@example.com",
          "--no-start",
        ]),
      ),
    );
  }
  const ctx = await openContext({ home: acc.home, env: acc.env, accRoot: root });
  const admin = await pgAdmin(ctx);
  const databases: number[] = [];
  for (let i = 0; i < runs; i++) {
    databases.push(await timed(() => admin.createInstanceDatabase(`bench-db${i}`)));
    await admin.dropInstanceDatabase(`bench-db${i}`);
  }
  await ctx.store.close();

  // 10,000 entries in one instance's database, inserted as its own role.
  await acc.ok(["start", "gb0"]);
  const env = parseEnvFile(await readFile(path.join(acc.home, "instances/gb0/env"), "utf8"));
  const client = new pg.Client({ connectionString: env.DATABASE_URL });
  await client.connect();
  await client.query(
    "INSERT INTO entries (author, message) SELECT 'author ' || g, repeat('message ', 10) || g FROM generate_series(1, $1) g",
    [entries],
  );
  await client.end();
  const backups: number[] = [];
  const restores: number[] = [];
  for (let i = 0; i < 3; i++) {
    let dir = "";
    backups.push(
      await timed(
        async () =>
          (dir = (JSON.parse(await acc.ok(["backup", "gb0", "--json"])) as { backup: string })
            .backup),
      ),
    );
    restores.push(await timed(() => acc.ok(["restore", "gb0", path.basename(dir)])));
  }
  const check = new pg.Client({ connectionString: env.DATABASE_URL });
  await check.connect();
  const count = Number(
    (await check.query<{ n: string }>("SELECT count(*) AS n FROM entries")).rows[0]?.n,
  );
  await check.end();
  if (count !== entries)
    throw new Error(`after restore the database has ${count} entries, expected ${entries}`);

  console.log(
    `bench/postgres: guestbook, ${runs} creates, ${entries} entries for backup/restore (CLI wall times)`,
  );
  printTable([
    ["create --no-start (median)", ms(median(creates))],
    ["  database part: role + database (median)", ms(median(databases))],
    ["  the rest (median difference)", ms(median(creates) - median(databases))],
    [`backup, ${entries} entries (median of 3)`, ms(median(backups))],
    [`restore into the instance, ${entries} entries (median of 3)`, ms(median(restores))],
  ]);
} finally {
  await acc.cleanup();
}
