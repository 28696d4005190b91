import { sql, type Kysely, type Migration, type MigrationProvider } from "kysely";

/**
 * Versioned migrations, in order. The same code runs on SQLite and Postgres: only
 * portable column types (text, integer) and an id column chosen per dialect.
 */
export function migrations(dialect: "sqlite" | "postgres"): Record<string, Migration> {
  return {
    "0001_initial": {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable("instances")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("model", "text", (c) => c.notNull())
          .addColumn("model_version", "text", (c) => c.notNull())
          .addColumn("model_hash", "text", (c) => c.notNull())
          .addColumn("state", "text", (c) => c.notNull())
          .addColumn("operation", "text")
          .addColumn("port", "integer", (c) => c.notNull().unique())
          .addColumn("hosts", "text", (c) => c.notNull())
          .addColumn("params", "text", (c) => c.notNull())
          .addColumn("idle_timeout", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .addColumn("state_changed_at", "text", (c) => c.notNull())
          .addColumn("last_activity_at", "text")
          .addColumn("last_error", "text")
          .execute();
        await db.schema
          .createTable("hosts")
          .addColumn("host", "text", (c) => c.primaryKey())
          .addColumn("instance", "text", (c) =>
            c.notNull().references("instances.name").onDelete("cascade"),
          )
          .execute();
        await db.schema.createIndex("hosts_instance").on("hosts").column("instance").execute();
        await db.schema
          .createTable("events")
          .addColumn("id", dialect === "postgres" ? "bigserial" : "integer", (c) =>
            dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn("time", "text", (c) => c.notNull())
          .addColumn("instance", "text")
          .addColumn("action", "text", (c) => c.notNull())
          .addColumn("cause", "text")
          .addColumn("outcome", "text", (c) => c.notNull())
          .addColumn("duration_ms", "integer")
          .addColumn("message", "text")
          .execute();
        await db.schema
          .createIndex("events_instance_id")
          .on("events")
          .columns(["instance", "id"])
          .execute();
        await db.schema
          .createTable("leases")
          .addColumn("resource", "text", (c) => c.primaryKey())
          .addColumn("holder", "text", (c) => c.notNull())
          .addColumn("token", "text", (c) => c.notNull())
          .addColumn("operation", "text", (c) => c.notNull())
          .addColumn("acquired_at", "text", (c) => c.notNull())
          .execute();
      },
    },
    "0002_instance_database": {
      async up(db: Kysely<unknown>): Promise<void> {
        // The instance's own Postgres database (and role), when its model declares one.
        await db.schema.alterTable("instances").addColumn("database", "text").execute();
      },
    },
    "0003_instance_limits": {
      async up(db: Kysely<unknown>): Promise<void> {
        // The instance's own limits (acc create --limit, acc set): JSON, null when it has none.
        await db.schema.alterTable("instances").addColumn("limits", "text").execute();
      },
    },
    "0004_tokens": {
      async up(db: Kysely<unknown>): Promise<void> {
        // API tokens: the secret itself is never stored, only its SHA-256.
        await db.schema
          .createTable("tokens")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("scope", "text", (c) => c.notNull())
          .addColumn("secret_hash", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("expires_at", "text")
          .addColumn("last_used_at", "text")
          .addColumn("revoked_at", "text")
          .execute();
        // A name is unique among tokens not revoked: a revoked token's name can be used again.
        await db.schema
          .createIndex("tokens_name_active")
          .on("tokens")
          .column("name")
          .unique()
          .where(sql.ref("revoked_at"), "is", null)
          .execute();
      },
    },
    "0005_events_action_id": {
      async up(db: Kysely<unknown>): Promise<void> {
        // The newest event of one action (the last backup, which /metrics reads at each scrape)
        // without scanning every event: a home without backups has millions of other ones.
        await db.schema
          .createIndex("events_action_id")
          .on("events")
          .columns(["action", "id"])
          .execute();
      },
    },
  };
}

export function migrationProvider(dialect: "sqlite" | "postgres"): MigrationProvider {
  return { getMigrations: () => Promise.resolve(migrations(dialect)) };
}
