import { chmodSync, closeSync, constants, fstatSync, fchmodSync, openSync } from "node:fs";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import type { Database } from "./schema.js";
import { createKyselyStore, type Store } from "./store.js";

/**
 * Makes the store's file (creating it empty when missing) and its side files 0600: they hold
 * every instance's settings and events. SQLite gives the -wal and -shm files it creates the
 * mode of the database file, so only side files made before a fix need one of their own.
 */
function restrictStoreFile(file: string): void {
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    if ((fstatSync(fd).mode & 0o777) === 0o600) return;
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
  for (const side of [`${file}-wal`, `${file}-shm`]) {
    try {
      chmodSync(side, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}

/** Opens (creating if needed) the SQLite store: WAL, and writers wait for each other instead of failing. */
export function openSqliteStore(file: string): Store {
  restrictStoreFile(file);
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
