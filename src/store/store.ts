import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  Migrator,
  sql,
  type ExpressionBuilder,
  type Kysely,
  type SelectQueryBuilder,
  type Transaction,
} from "kysely";
import { AccError } from "../lib/errors.js";
import type { InstanceState } from "../core/states.js";
import { migrationProvider, migrations } from "./migrations.js";
import type { Database, EventsTable, InstancesTable, TokensTable } from "./schema.js";

export interface InstanceRecord {
  name: string;
  model: string;
  modelVersion: string;
  modelHash: string;
  state: InstanceState;
  operation: string | null;
  port: number;
  hosts: string[];
  params: Record<string, string>;
  /** undefined: inherit; null: never; else milliseconds. */
  idleTimeout: number | null | undefined;
  createdAt: string;
  updatedAt: string;
  stateChangedAt: string;
  lastActivityAt: string | null;
  lastError: string | null;
  /** Its Postgres database (and role) name, when its model has one. */
  database: string | null;
  /** Its own limits (acc create --limit, acc set): a number, or null for none; absent: inherit. */
  limits?: InstanceLimits;
}

/** What a list shows of an instance: all but its model hash, operation, database and limits. */
export type InstanceSummary = Omit<
  InstanceRecord,
  "modelHash" | "operation" | "database" | "limits"
>;

/**
 * What a monitor pass reads of every instance at each pass: no JSON column to parse, so that
 * 10,000 rows cost a fraction of listInstances (design.md, "Idle clock").
 */
export type InstanceActivity = Pick<
  InstanceRecord,
  | "name"
  | "model"
  | "modelVersion"
  | "modelHash"
  | "state"
  | "port"
  | "idleTimeout"
  | "stateChangedAt"
  | "lastActivityAt"
>;

export type InstanceLimits = Partial<Record<"memory" | "cpu" | "pids", number | null>>;

export interface NewInstance {
  name: string;
  model: string;
  modelVersion: string;
  modelHash: string;
  hosts: string[];
  params: Record<string, string>;
  idleTimeout: number | null | undefined;
  portRange: { min: number; max: number };
  database?: string | null;
  limits?: InstanceLimits;
}

export interface EventRecord {
  id: number;
  time: string;
  instance: string | null;
  action: string;
  cause: string | null;
  outcome: string;
  durationMs: number | null;
  message: string | null;
}

export type NewEvent = Omit<EventRecord, "id" | "time"> & { time?: string };

export interface InstancePatch {
  state?: InstanceState;
  operation?: string | null;
  lastError?: string | null;
  lastActivityAt?: string | null;
  idleTimeout?: number | null | undefined;
  hosts?: string[];
  limits?: InstanceLimits;
  /** An upgrade or a rollback: the model version it runs and its public parameters. */
  model?: { version: string; hash: string; params: Record<string, string> };
}

export interface Lease {
  resource: string;
  operation: string;
  release(): Promise<void>;
}

export interface LeaseHolder {
  resource: string;
  holder: string;
  operation: string;
  acquiredAt: string;
}

/** An API token as stored: never its secret, only the secret's hash. */
export interface TokenRecord {
  id: string;
  name: string;
  /** admin, read or instance:NAME (core/scopes.ts parses it). */
  scope: string;
  /** SHA-256 of the secret, hex. */
  secretHash: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export type NewToken = Omit<TokenRecord, "lastUsedAt" | "revokedAt">;

/** Which instances `listInstances` gives, in which order: filters, then sort, then paging. */
export interface InstanceQuery {
  /** A case-insensitive substring of the name or of any of its hosts. */
  search?: string;
  state?: InstanceState;
  model?: string;
  /** name (the default); activity: the most recent last activity first, never active last. */
  sort?: "name" | "activity";
  limit?: number;
  offset?: number;
}

export interface Store {
  readonly dialect: "sqlite" | "postgres";
  migrate(): Promise<void>;
  listInstances(query?: InstanceQuery): Promise<InstanceRecord[]>;
  /** The same instances as listInstances, with only what a list shows of them (fewer columns). */
  listInstanceSummaries(query?: InstanceQuery): Promise<InstanceSummary[]>;
  /** Every instance, by name, with only what a monitor pass needs of it. */
  listInstanceActivity(): Promise<InstanceActivity[]>;
  /** How many instances are in each state (states without any are left out). */
  countByState(): Promise<Map<string, number>>;
  getInstance(name: string): Promise<InstanceRecord | undefined>;
  /** Inserts the instance in state `creating` with a free port from the range. */
  insertInstance(instance: NewInstance, now: string): Promise<InstanceRecord>;
  updateInstance(name: string, patch: InstancePatch, now: string): Promise<void>;
  deleteInstance(name: string): Promise<void>;
  /** Moves last_activity_at forward (never back) for many instances in one transaction. */
  recordActivity(entries: readonly { name: string; at: string }[]): Promise<void>;
  /** The instance that uses a host, if any. */
  hostOwner(host: string): Promise<string | undefined>;
  addEvent(event: NewEvent, now: string): Promise<void>;
  /**
   * The latest `limit` events, oldest first: of one instance, action or outcome when given, and
   * after the event `afterId` when given.
   */
  listEvents(options: {
    instance?: string;
    action?: string;
    outcome?: string;
    limit: number;
    afterId?: number;
  }): Promise<EventRecord[]>;
  /** Takes a lease, or returns the live holder when it is taken. */
  tryLease(resource: string, operation: string, now: string): Promise<Lease | LeaseHolder>;
  listLeases(): Promise<LeaseHolder[]>;
  /** Adds a token; ACC_CONFLICT when a token not revoked has the same name. */
  addToken(token: NewToken): Promise<void>;
  /** Every token, revoked ones too, oldest first. */
  listTokens(): Promise<TokenRecord[]>;
  getTokenById(id: string): Promise<TokenRecord | undefined>;
  /** Marks a token revoked; false when there is none by that id or it was revoked already. */
  revokeToken(id: string, now: string): Promise<boolean>;
  /** Moves the token's last use forward (never back). */
  touchToken(id: string, now: string): Promise<void>;
  close(): Promise<void>;
}

/** Identity of this process that survives pid reuse: pid plus its start time in clock ticks. */
export function processIdentity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime) comes after the command name, which may hold spaces or ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return `${pid}:${fields[19] ?? "0"}`;
  } catch {
    return undefined;
  }
}

/** Whether the process a lease names (pid:start-time) is still the same live process. */
export function holderAlive(holder: string): boolean {
  const pid = Number(holder.split(":")[0]);
  return Number.isInteger(pid) && pid > 0 && processIdentity(pid) === holder;
}

/** The columns an instance summary is made of: the list reads these alone (10,000 rows). */
const SUMMARY_COLUMNS = [
  "name",
  "model",
  "model_version",
  "state",
  "port",
  "hosts",
  "params",
  "idle_timeout",
  "created_at",
  "updated_at",
  "state_changed_at",
  "last_activity_at",
  "last_error",
] as const;

/** The columns of an InstanceActivity. */
const ACTIVITY_COLUMNS = [
  "name",
  "model",
  "model_version",
  "model_hash",
  "state",
  "port",
  "idle_timeout",
  "state_changed_at",
  "last_activity_at",
] as const;

type SummaryRow = Pick<InstancesTable, (typeof SUMMARY_COLUMNS)[number]>;

function toSummary(row: SummaryRow): InstanceSummary {
  return {
    name: row.name,
    model: row.model,
    modelVersion: row.model_version,
    state: row.state as InstanceState,
    port: Number(row.port),
    hosts: JSON.parse(row.hosts) as string[],
    params: JSON.parse(row.params) as Record<string, string>,
    idleTimeout: idleFromText(row.idle_timeout),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    stateChangedAt: row.state_changed_at,
    lastActivityAt: row.last_activity_at,
    lastError: row.last_error,
  };
}

function idleFromText(text: string | null): number | null | undefined {
  return text === null ? undefined : text === "never" ? null : Number(text);
}

/**
 * The query's filters, order and page on a select of instances (whatever columns it takes).
 * Search is LIKE with its wildcards escaped, so what is typed is searched for, '%' and '_'
 * too; Postgres' LIKE is case-sensitive and SQLite's only for ASCII: lower() on both sides.
 */
function matching<O>(
  select: SelectQueryBuilder<Database, "instances", O>,
  query: InstanceQuery,
): SelectQueryBuilder<Database, "instances", O> {
  if (query.state !== undefined) select = select.where("state", "=", query.state);
  if (query.model !== undefined) select = select.where("model", "=", query.model);
  if (query.search !== undefined && query.search !== "") {
    const lowered = query.search.toLowerCase();
    const pattern = `%${lowered.replace(/[\\%_]/g, "\\$&")}%`;
    const like = (column: string) =>
      sql<boolean>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;
    // The hosts column is the JSON array of the hosts' names. Text of the characters a host
    // name is made of (a-z, 0-9, '.', '-') matches that array's text exactly when it is part
    // of one host: it cannot span two without '","'. One scan of the rows, no join (3x faster
    // at 10,000); any other text asks the hosts table.
    const hosts = /^[a-z0-9.-]+$/.test(lowered)
      ? like("instances.hosts")
      : (eb: ExpressionBuilder<Database, "instances">) =>
          eb.exists(
            eb
              .selectFrom("hosts")
              .select("hosts.host")
              .whereRef("hosts.instance", "=", "instances.name")
              .where(like("hosts.host")),
          );
    select = select.where((eb) =>
      eb.or([like("instances.name"), typeof hosts === "function" ? hosts(eb) : hosts]),
    );
  }
  if (query.sort === "activity") {
    // Never active last on both engines (their default places of NULL differ).
    select = select
      .orderBy(sql`case when last_activity_at is null then 1 else 0 end`)
      .orderBy("last_activity_at", "desc");
  }
  select = select.orderBy("instances.name");
  if (query.limit !== undefined || query.offset !== undefined) {
    // SQLite takes OFFSET only after a LIMIT: none asked is all of them.
    select = select.limit(query.limit ?? Number.MAX_SAFE_INTEGER).offset(query.offset ?? 0);
  }
  return select;
}

function toRecord(row: InstancesTable): InstanceRecord {
  return {
    ...toSummary(row),
    modelHash: row.model_hash,
    operation: row.operation,
    database: row.database ?? null,
    limits: row.limits ? (JSON.parse(row.limits) as InstanceLimits) : {},
  };
}

function toTokenRecord(row: TokensTable): TokenRecord {
  return {
    id: row.id,
    name: row.name,
    scope: row.scope,
    secretHash: row.secret_hash,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

function limitsToText(limits: InstanceLimits | undefined): string | null {
  return limits === undefined || Object.keys(limits).length === 0 ? null : JSON.stringify(limits);
}

function idleToText(value: number | null | undefined): string | null {
  return value === undefined ? null : value === null ? "never" : String(value);
}

/** True for a unique-constraint violation on either engine. */
function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return (
    code === "SQLITE_CONSTRAINT_UNIQUE" ||
    code === "SQLITE_CONSTRAINT_PRIMARYKEY" ||
    code === "23505"
  );
}

export interface StoreOptions {
  db: Kysely<Database>;
  dialect: "sqlite" | "postgres";
  /** Runs fn in a write transaction that serialises with other writers across processes. */
  writeTransaction: <T>(fn: (trx: Kysely<Database>) => Promise<T>) => Promise<T>;
}

/** The store on any Kysely database: one implementation, so SQLite and Postgres cannot drift apart. */
export function createKyselyStore({ db, dialect, writeTransaction }: StoreOptions): Store {
  const self = identityOfSelf();

  return {
    dialect,

    async migrate() {
      // Every command opens the store: when it is up to date (the common case), one read
      // says so, instead of the Migrator's lock-taking write transaction.
      const latest = Object.keys(migrations(dialect)).sort().at(-1);
      try {
        const { rows } = await sql<{
          name: string;
        }>`select name from kysely_migration order by name desc limit 1`.execute(db);
        if (rows[0]?.name === latest) return;
      } catch (error) {
        // No migration table yet (SQLite: "no such table"; Postgres: 42P01): a new store.
        const missing =
          (error as { code?: unknown }).code === "42P01" ||
          (error instanceof Error && error.message.includes("no such table"));
        if (!missing) throw error;
      }
      const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
      const { error } = await migrator.migrateToLatest();
      if (error)
        throw new AccError(
          "ACC_FAILED",
          `store migration failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`,
          {
            cause: error,
          },
        );
    },

    async listInstances(query = {}) {
      const rows = await matching(
        db.selectFrom("instances").selectAll("instances"),
        query,
      ).execute();
      return rows.map(toRecord);
    },

    async listInstanceSummaries(query = {}) {
      const rows = await matching(
        db.selectFrom("instances").select(SUMMARY_COLUMNS),
        query,
      ).execute();
      return rows.map(toSummary);
    },

    async listInstanceActivity() {
      const rows = await db
        .selectFrom("instances")
        .select(ACTIVITY_COLUMNS)
        .orderBy("name")
        .execute();
      return rows.map((row): InstanceActivity => ({
        name: row.name,
        model: row.model,
        modelVersion: row.model_version,
        modelHash: row.model_hash,
        state: row.state as InstanceState,
        port: Number(row.port),
        idleTimeout: idleFromText(row.idle_timeout),
        stateChangedAt: row.state_changed_at,
        lastActivityAt: row.last_activity_at,
      }));
    },

    async countByState() {
      const rows = await db
        .selectFrom("instances")
        .select(["state", (eb) => eb.fn.countAll().as("count")])
        .groupBy("state")
        .execute();
      return new Map(rows.map((row) => [row.state, Number(row.count)]));
    },

    async getInstance(name) {
      const row = await db
        .selectFrom("instances")
        .selectAll()
        .where("name", "=", name)
        .executeTakeFirst();
      return row ? toRecord(row) : undefined;
    },

    async insertInstance(instance, now) {
      for (let attempt = 0; ; attempt++) {
        try {
          return await writeTransaction(async (trx) => {
            const taken = await trx
              .selectFrom("instances")
              .select("name")
              .where("name", "=", instance.name)
              .executeTakeFirst();
            if (taken) {
              throw new AccError("ACC_CONFLICT", `instance ${instance.name} already exists`, {
                hint: "choose another --name, or acc destroy it first",
              });
            }
            for (const host of instance.hosts) {
              const owner = await trx
                .selectFrom("hosts")
                .select("instance")
                .where("host", "=", host)
                .executeTakeFirst();
              if (owner) {
                throw new AccError(
                  "ACC_CONFLICT",
                  `host ${host} is already used by instance ${owner.instance}`,
                );
              }
            }
            const port = await freePort(trx, instance.portRange);
            const row: InstancesTable = {
              name: instance.name,
              model: instance.model,
              model_version: instance.modelVersion,
              model_hash: instance.modelHash,
              state: "creating",
              operation: "create",
              port,
              hosts: JSON.stringify(instance.hosts),
              params: JSON.stringify(instance.params),
              idle_timeout: idleToText(instance.idleTimeout),
              created_at: now,
              updated_at: now,
              state_changed_at: now,
              last_activity_at: null,
              last_error: null,
              database: instance.database ?? null,
              limits: limitsToText(instance.limits),
            };
            await trx.insertInto("instances").values(row).execute();
            if (instance.hosts.length > 0) {
              await trx
                .insertInto("hosts")
                .values(instance.hosts.map((host) => ({ host, instance: instance.name })))
                .execute();
            }
            return toRecord(row);
          });
        } catch (error) {
          // Another process took the same port between our read and our insert: pick again.
          if (isUniqueViolation(error) && attempt < 20) continue;
          throw error;
        }
      }
    },

    async updateInstance(name, patch, now) {
      await writeTransaction(async (trx) => {
        const values: Partial<InstancesTable> = { updated_at: now };
        if (patch.state !== undefined) {
          values.state = patch.state;
          values.state_changed_at = now;
        }
        if (patch.operation !== undefined) values.operation = patch.operation;
        if (patch.lastError !== undefined) values.last_error = patch.lastError;
        if (patch.lastActivityAt !== undefined) values.last_activity_at = patch.lastActivityAt;
        if ("idleTimeout" in patch) values.idle_timeout = idleToText(patch.idleTimeout);
        if (patch.limits !== undefined) values.limits = limitsToText(patch.limits);
        if (patch.model !== undefined) {
          values.model_version = patch.model.version;
          values.model_hash = patch.model.hash;
          values.params = JSON.stringify(patch.model.params);
        }
        if (patch.hosts !== undefined) {
          values.hosts = JSON.stringify(patch.hosts);
          await trx.deleteFrom("hosts").where("instance", "=", name).execute();
          if (patch.hosts.length > 0) {
            try {
              await trx
                .insertInto("hosts")
                .values(patch.hosts.map((host) => ({ host, instance: name })))
                .execute();
            } catch (error) {
              // Another instance took one of them since the caller looked (acc host add twice
              // at once): refused as at insert, and the transaction changes nothing.
              if (!isUniqueViolation(error)) throw error;
              throw new AccError(
                "ACC_CONFLICT",
                `one of the hosts ${patch.hosts.join(", ")} is already used by another instance`,
                { cause: error },
              );
            }
          }
        }
        await trx.updateTable("instances").set(values).where("name", "=", name).execute();
      });
    },

    async deleteInstance(name) {
      await writeTransaction(async (trx) => {
        await trx.deleteFrom("hosts").where("instance", "=", name).execute();
        await trx.deleteFrom("instances").where("name", "=", name).execute();
      });
    },

    async recordActivity(entries) {
      if (entries.length === 0) return;
      await writeTransaction(async (trx) => {
        for (const { name, at } of entries) {
          await trx
            .updateTable("instances")
            .set({ last_activity_at: at })
            .where("name", "=", name)
            .where((eb) =>
              eb.or([eb("last_activity_at", "is", null), eb("last_activity_at", "<", at)]),
            )
            .execute();
        }
      });
    },

    async hostOwner(host) {
      const row = await db
        .selectFrom("hosts")
        .select("instance")
        .where("host", "=", host)
        .executeTakeFirst();
      return row?.instance;
    },

    async addEvent(event, now) {
      const row: Omit<EventsTable, "id"> = {
        time: event.time ?? now,
        instance: event.instance,
        action: event.action,
        cause: event.cause,
        outcome: event.outcome,
        duration_ms: event.durationMs === null ? null : Math.round(event.durationMs),
        message: event.message,
      };
      await db.insertInto("events").values(row).execute();
    },

    async listEvents({ instance, action, outcome, limit, afterId }) {
      let query = db.selectFrom("events").selectAll().orderBy("id", "desc").limit(limit);
      if (instance !== undefined) query = query.where("instance", "=", instance);
      if (action !== undefined) query = query.where("action", "=", action);
      if (outcome !== undefined) query = query.where("outcome", "=", outcome);
      if (afterId !== undefined) query = query.where("id", ">", afterId);
      const rows = await query.execute();
      return rows.reverse().map((row) => ({
        id: Number(row.id),
        time: row.time,
        instance: row.instance,
        action: row.action,
        cause: row.cause,
        outcome: row.outcome,
        durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
        message: row.message,
      }));
    },

    async tryLease(resource, operation, now) {
      const token = randomBytes(12).toString("hex");
      for (let attempt = 0; attempt < 3; attempt++) {
        const inserted = await db
          .insertInto("leases")
          .values({ resource, holder: self, token, operation, acquired_at: now })
          .onConflict((oc) => oc.column("resource").doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) {
          return {
            resource,
            operation,
            release: async () => {
              await db
                .deleteFrom("leases")
                .where("resource", "=", resource)
                .where("token", "=", token)
                .execute();
            },
          };
        }
        const current = await db
          .selectFrom("leases")
          .selectAll()
          .where("resource", "=", resource)
          .executeTakeFirst();
        if (!current) continue;
        if (holderAlive(current.holder)) {
          return {
            resource,
            holder: current.holder,
            operation: current.operation,
            acquiredAt: current.acquired_at,
          };
        }
        // The holder died mid-operation: take the lease over (compare-and-delete on its token).
        await db
          .deleteFrom("leases")
          .where("resource", "=", resource)
          .where("token", "=", current.token)
          .execute();
      }
      throw new AccError("ACC_BUSY", `could not take the lease on ${resource}`);
    },

    async listLeases() {
      const rows = await db.selectFrom("leases").selectAll().execute();
      return rows.map((r) => ({
        resource: r.resource,
        holder: r.holder,
        operation: r.operation,
        acquiredAt: r.acquired_at,
      }));
    },

    async addToken(token) {
      const conflict = new AccError(
        "ACC_CONFLICT",
        `a token named ${JSON.stringify(token.name)} already exists`,
        { hint: "choose another name, or revoke that token first" },
      );
      try {
        await writeTransaction(async (trx) => {
          const taken = await trx
            .selectFrom("tokens")
            .select("id")
            .where("name", "=", token.name)
            .where("revoked_at", "is", null)
            .executeTakeFirst();
          if (taken) throw conflict;
          const row: TokensTable = {
            id: token.id,
            name: token.name,
            scope: token.scope,
            secret_hash: token.secretHash,
            created_at: token.createdAt,
            expires_at: token.expiresAt,
            last_used_at: null,
            revoked_at: null,
          };
          await trx.insertInto("tokens").values(row).execute();
        });
      } catch (error) {
        // The partial unique index on active names, should a writer slip past the check.
        if (isUniqueViolation(error) && String((error as Error).message).includes("name"))
          throw conflict;
        throw error;
      }
    },

    async listTokens() {
      const rows = await db
        .selectFrom("tokens")
        .selectAll()
        .orderBy("created_at")
        .orderBy("id")
        .execute();
      return rows.map(toTokenRecord);
    },

    async getTokenById(id) {
      const row = await db.selectFrom("tokens").selectAll().where("id", "=", id).executeTakeFirst();
      return row ? toTokenRecord(row) : undefined;
    },

    async revokeToken(id, now) {
      const result = await db
        .updateTable("tokens")
        .set({ revoked_at: now })
        .where("id", "=", id)
        .where("revoked_at", "is", null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async touchToken(id, now) {
      await db
        .updateTable("tokens")
        .set({ last_used_at: now })
        .where("id", "=", id)
        .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", now)]))
        .execute();
    },

    async close() {
      await db.destroy();
    },
  };
}

function identityOfSelf(): string {
  return processIdentity(process.pid) ?? `${process.pid}:0`;
}

async function freePort(
  trx: Kysely<Database> | Transaction<Database>,
  range: { min: number; max: number },
): Promise<number> {
  const rows = await trx
    .selectFrom("instances")
    .select("port")
    .where("port", ">=", range.min)
    .where("port", "<=", range.max)
    .orderBy("port")
    .execute();
  let candidate = range.min;
  for (const { port } of rows) {
    if (Number(port) > candidate) break;
    candidate = Number(port) + 1;
  }
  if (candidate > range.max) {
    throw new AccError("ACC_FAILED", `no free instance port left in ${range.min}-${range.max}`, {
      hint: "widen instance_port_min/instance_port_max in acc.toml",
    });
  }
  return candidate;
}
