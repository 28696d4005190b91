import { Kysely, PostgresDialect, sql } from "kysely";
import { Pool } from "pg";
import { parse as parseConnectionString } from "pg-connection-string";
import { AccError } from "../lib/errors.js";
import type { Database } from "./schema.js";
import { createKyselyStore, type Store } from "./store.js";

// Any constant works: advisory locks are per database, and this one only guards the store's
// own read-then-write transactions (the free port search in insertInstance).
const WRITE_LOCK_KEY = 0x61636301;

export interface PostgresStoreOptions {
  /** Pool size; the CLI needs one or two, acc server a few. */
  maxConnections?: number;
}

/** The server a URL points at, for messages: never the password. */
function describeUrl(url: string): string {
  const { host, port } = parseConnectionString(url);
  const where = host ?? "localhost";
  return where.startsWith("/") ? `${where}/.s.PGSQL.${port || 5432}` : `${where}:${port || 5432}`;
}

/** The store on Postgres (the config's state URL), same schema and code as on SQLite. */
export function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Store {
  const pool = new Pool({
    connectionString: url,
    max: options.maxConnections ?? 4,
    application_name: "acc",
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    // Also bounds the wait for the write lock: a writer stuck that long is a bug elsewhere.
    statement_timeout: 30_000,
    idle_in_transaction_session_timeout: 60_000,
  });
  // An idle client that loses its connection (a server restart) is dropped by the pool, and
  // the next query reconnects or fails on its own; unheard, the event would end the process.
  pool.on("error", () => undefined);

  const db = new Kysely<Database>({
    dialect: new PostgresDialect({
      pool: {
        async connect() {
          try {
            return await pool.connect();
          } catch (error) {
            const reason = error instanceof Error ? error.message : String(error);
            throw new AccError(
              "ACC_FAILED",
              `Postgres is not reachable at ${describeUrl(url)}: ${reason}`,
              { hint: "check that Postgres runs and the store URL in acc.toml", cause: error },
            );
          }
        },
        end: () => pool.end(),
      },
    }),
  });

  return createKyselyStore({
    db,
    dialect: "postgres",
    // The advisory lock makes writers take turns, as BEGIN IMMEDIATE does on SQLite: under
    // READ COMMITTED each statement after it sees what the previous holder committed.
    writeTransaction: (fn) =>
      db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${WRITE_LOCK_KEY})`.execute(trx);
        return fn(trx);
      }),
  });
}
