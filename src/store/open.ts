import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import type { Database } from "./schema.js";
import { createKyselyStore, type Store } from "./store.js";

/** Opens (creating if needed) the SQLite store: WAL, and writers wait for each other instead of failing. */
export function openSqliteStore(file: string): Store {
  const database = new BetterSqlite3(file, { timeout: 10_000 });
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = NORMAL");
  database.pragma("foreign_keys = ON");
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return createKyselyStore({
    db,
    dialect: "sqlite",
    // BEGIN IMMEDIATE takes the write lock up front, so a read-then-write transaction
    // cannot fail with SQLITE_BUSY when another process writes in between.
    writeTransaction: (fn) =>
      db.connection().execute(async (conn) => {
        await sql`begin immediate`.execute(conn);
        try {
          const result = await fn(conn);
          await sql`commit`.execute(conn);
          return result;
        } catch (error) {
          await sql`rollback`.execute(conn);
          throw error;
        }
      }),
  });
}
