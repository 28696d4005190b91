import { randomBytes } from "node:crypto";
import {
  access,
  chmod,
  chown,
  constants,
  mkdir,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  stat,
} from "node:fs/promises";
import { userInfo } from "node:os";
import type { Client, ClientConfig } from "pg";
import { parse as parseConnectionString } from "pg-connection-string";
import type { HomePaths } from "../../core/paths.js";
import { AccError, hasErrno } from "../../lib/errors.js";
import { ExecError, type Exec } from "../../lib/exec.js";
import {
  chownTreeNoFollow,
  readDirIfExists,
  readFileIfExists,
  writeFileAtomic,
} from "../../lib/files.js";
import type { ServiceProgram } from "../supervisord/render.js";
import {
  clusterLayout,
  instanceDatabaseName,
  instanceOfDatabase,
  quoteIdent,
  quoteLiteral,
  renderPgHba,
  replacedDatabaseName,
  stagedDatabaseName,
  renderPgIdent,
  renderPostgresConf,
  scramVerifier,
  type ClusterLayout,
} from "./render.js";

export {
  clusterLayout,
  instanceDatabaseName,
  instanceOfDatabase,
  quoteIdent,
  quoteLiteral,
  replacedDatabaseName,
  stagedDatabaseName,
  LOCAL_CONF,
} from "./render.js";
export type { ClusterLayout } from "./render.js";

/** Where the admin connects: a host name or a socket folder (starting with '/'). */
export interface PgConnection {
  host: string;
  port: number;
  user: string;
  password?: string;
  /** The database the admin connection opens (not an instance's). */
  database: string;
}

/** A PgConnection, or a postgres:// URL (an external server's admin URL). */
export type PgTarget = string | PgConnection;

export interface ServiceUser {
  name: string;
  uid: number;
  gid: number;
}

const PACKAGE_ROOT = "/usr/lib/postgresql";
const CONNECT_TIMEOUT_MS = 5_000;
const QUERY_TIMEOUT_MS = 30_000;
// CREATE DATABASE copies a template and checkpoints: slow on a busy disk.
const CREATE_DATABASE_TIMEOUT_MS = 120_000;
const TOOL_TIMEOUT_MS = 60 * 60_000;

async function hasServerBinaries(dir: string): Promise<boolean> {
  try {
    await access(`${dir}/postgres`, constants.X_OK);
    await access(`${dir}/initdb`, constants.X_OK);
    return true;
  } catch (error) {
    if (hasErrno(error, "ENOENT") || hasErrno(error, "EACCES")) return false;
    throw error;
  }
}

/**
 * The folder of the PostgreSQL server binaries. An existing cluster pins its major version
 * (its data only opens with that one); else pg_config's, else the highest Debian installs.
 */
export async function findPostgresBin(
  exec: Exec,
  options: { dataDir?: string } = {},
): Promise<string> {
  const pinned =
    options.dataDir === undefined
      ? undefined
      : (await readFileIfExists(`${options.dataDir}/PG_VERSION`))?.trim();
  if (pinned !== undefined && pinned !== "") {
    const dir = `${PACKAGE_ROOT}/${pinned}/bin`;
    if (await hasServerBinaries(dir)) return dir;
    throw new AccError(
      "ACC_ENV",
      `the Postgres cluster in ${options.dataDir} is version ${pinned}, whose binaries are not installed`,
      { hint: `apt-get install postgresql-${pinned}` },
    );
  }
  try {
    const { stdout } = await exec("pg_config", ["--bindir"], { timeoutMs: 10_000 });
    const dir = stdout.trim();
    // Debian's pg_config comes with libpq-dev and may name a version whose server is absent.
    if (dir !== "" && (await hasServerBinaries(dir))) return dir;
  } catch (error) {
    if (!(error instanceof ExecError)) throw error;
  }
  let versions: string[] = [];
  try {
    versions = (await readdir(PACKAGE_ROOT)).filter((v) => /^\d+$/.test(v));
  } catch (error) {
    if (!hasErrno(error, "ENOENT")) throw error;
  }
  for (const version of versions.sort((a, b) => Number(b) - Number(a))) {
    const dir = `${PACKAGE_ROOT}/${version}/bin`;
    if (await hasServerBinaries(dir)) return dir;
  }
  throw new AccError("ACC_ENV", "PostgreSQL server binaries (postgres, initdb) not found", {
    hint: "apt-get install postgresql",
  });
}

/** The major version of the binaries in bin (15 for "postgres (PostgreSQL) 15.14"). */
export async function postgresMajor(exec: Exec, bin: string): Promise<number> {
  const { stdout } = await exec(`${bin}/postgres`, ["--version"], { timeoutMs: 10_000 });
  const major = /PostgreSQL\)\s+(\d+)/.exec(stdout)?.[1];
  if (major === undefined) throw new Error(`unexpected postgres --version output: ${stdout}`);
  return Number(major);
}

export interface ManagedPostgresOptions {
  paths: HomePaths;
  exec: Exec;
  port: number;
  /** From findPostgresBin (with dataDir: clusterLayout(paths.postgres).data). */
  bin: string;
  /**
   * As root: the user Postgres runs as and owns its files (postgres_user), mapped to the
   * superuser role. Omitted: the current user.
   */
  postgresUser?: ServiceUser;
  /** The cluster's superuser role, which acc's admin connection uses. Default "acc". */
  superuser?: string;
  /** The OS user acc itself runs as (allowed in as the superuser). Default: the current user. */
  adminOsUser?: string;
  sharedBuffers?: string;
  maxConnections?: number;
}

export interface ManagedPostgres {
  readonly layout: ClusterLayout;
  readonly port: number;
  readonly superuser: string;
  /**
   * Whether the cluster's files belong to another OS user than postgres_user (a home of an
   * older acc, whose one service user also ran nginx). init then re-owns them, and refuses to
   * while the cluster runs: stop it first.
   */
  ownedByAnotherUser(): Promise<boolean>;
  /** Creates the cluster when missing, re-owns it, (re)writes its config files; idempotent. */
  init(): Promise<{ created: boolean }>;
  /** The foreground postgres command for supervisord (run as postgres_user). */
  command(): string[];
  /** acc's own service program for supervisord: stop with SIGINT, Postgres's fast shutdown. */
  serviceProgram(logFile: string): ServiceProgram;
  /** acc's admin connection, over the socket as the superuser. */
  adminConnection(): PgConnection;
  /** The same as a URL, for openPostgresStore and libpq tools. */
  adminUrl(database?: string): string;
  /** Where instances connect: loopback TCP. */
  instanceAddress(): { host: string; port: number };
}

/** The cluster acc runs itself in HOME/postgres (design.md, "Processes after acc boot"). */
export function createManagedPostgres(options: ManagedPostgresOptions): ManagedPostgres {
  const { exec, bin, port, postgresUser } = options;
  const layout = clusterLayout(options.paths.postgres);
  const superuser = options.superuser ?? "acc";
  const runAs = postgresUser ? { uid: postgresUser.uid, gid: postgresUser.gid } : {};

  async function ownedDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Postgres refuses a data folder open to others, and the socket folder's mode is the first
    // guard of the admin socket; fixed on every init in case someone changed them.
    await chmod(dir, 0o700);
    if (postgresUser) await chown(dir, postgresUser.uid, postgresUser.gid);
  }

  async function ownedByAnotherUser(): Promise<boolean> {
    if (!postgresUser) return false;
    // The top folder is re-owned last (chownTreeNoFollow), so a move cut short shows here.
    // stat, as chown in ownedDir: HOME/postgres may be root's link to another disk.
    for (const dir of [layout.root, layout.data]) {
      try {
        const info = await stat(dir);
        if (info.uid !== postgresUser.uid || info.gid !== postgresUser.gid) return true;
      } catch (error) {
        if (!hasErrno(error, "ENOENT")) throw error;
      }
    }
    return false;
  }

  /** The pid of a postmaster running on this data folder, from its postmaster.pid. */
  async function runningPostmaster(): Promise<number | undefined> {
    const pid = Number((await readFileIfExists(`${layout.data}/postmaster.pid`))?.split("\n")[0]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    try {
      // A postmaster works in its data folder: a stale file's pid, now another process's, does not.
      return (await readlink(`/proc/${pid}/cwd`)) === layout.data ? pid : undefined;
    } catch (error) {
      if (hasErrno(error, "ENOENT") || hasErrno(error, "ESRCH")) return undefined;
      throw error;
    }
  }

  /** Gives the whole cluster folder to postgres_user; its files move only while it is stopped. */
  async function takeOwnership(user: ServiceUser): Promise<void> {
    const pid = await runningPostmaster();
    if (pid !== undefined) {
      throw new AccError(
        "ACC_FAILED",
        `the Postgres cluster in ${layout.data} runs (pid ${pid}) as another user than ${user.name}`,
        { hint: "stop it (acc shutdown), then run acc boot again" },
      );
    }
    // HOME/postgres (0700) holds only the cluster; the walk first closes it to its old owner.
    const root = await realpath(layout.root);
    await chmod(root, 0o700);
    await chownTreeNoFollow(root, user);
  }

  const command = (): string[] =>
    // Port and socket folder are in postgresql.conf, so pg_ctl or a hand-run postgres agree.
    [`${bin}/postgres`, "-D", layout.data];

  async function writeOwned(file: string, content: string): Promise<void> {
    await writeFileAtomic(file, content, { mode: 0o600, ...runAs });
  }

  return {
    layout,
    port,
    superuser,

    ownedByAnotherUser,

    async init() {
      if (!postgresUser && process.getuid?.() === 0) {
        throw new Error("as root, the managed Postgres needs its own user: it refuses root");
      }
      const socketFile = `${layout.socket}/.s.PGSQL.${port}`;
      // sun_path holds 108 bytes with its NUL; Postgres would only fail at its start.
      if (Buffer.byteLength(socketFile) > 107) {
        throw new AccError("ACC_ENV", `the Postgres socket path is too long: ${socketFile}`, {
          hint: "use a shorter home folder (--home)",
        });
      }
      if (postgresUser && (await ownedByAnotherUser())) await takeOwnership(postgresUser);
      await ownedDir(layout.root);
      await ownedDir(layout.socket);
      const version = (await readFileIfExists(`${layout.data}/PG_VERSION`))?.trim();
      let created = false;
      if (version === undefined) {
        if ((await readDirIfExists(layout.data)).length > 0) {
          throw new AccError("ACC_FAILED", `${layout.data} exists but holds no Postgres cluster`, {
            hint: "move it away, then run acc init again",
          });
        }
        // initdb into a side folder renamed at the end, so a crash never leaves a half cluster
        // where the next init would take it for a whole one.
        const staging = `${layout.root}/data.init`;
        await rm(staging, { recursive: true, force: true });
        await ownedDir(staging);
        await exec(
          `${bin}/initdb`,
          [
            "-D",
            staging,
            "-U",
            superuser,
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
          ],
          // cwd: initdb, as postgres_user, cannot read the caller's folder (often /root).
          { ...runAs, cwd: layout.root, timeoutMs: 120_000 },
        );
        await rename(staging, layout.data);
        created = true;
      } else {
        const major = await postgresMajor(exec, bin);
        if (String(major) !== version) {
          throw new AccError(
            "ACC_ENV",
            `the cluster in ${layout.data} is PostgreSQL ${version} but ${bin} is ${major}`,
            { hint: `install postgresql-${version}, or upgrade the cluster with pg_upgrade` },
          );
        }
      }
      const hba = {
        superuser,
        adminOsUsers: [
          options.adminOsUser ?? userInfo().username,
          ...(postgresUser ? [postgresUser.name] : []),
        ],
      };
      await writeOwned(
        `${layout.data}/postgresql.conf`,
        renderPostgresConf({
          port,
          socketDir: layout.socket,
          ...(options.sharedBuffers !== undefined ? { sharedBuffers: options.sharedBuffers } : {}),
          ...(options.maxConnections !== undefined
            ? { maxConnections: options.maxConnections }
            : {}),
        }),
      );
      await writeOwned(`${layout.data}/pg_hba.conf`, renderPgHba(hba));
      await writeOwned(`${layout.data}/pg_ident.conf`, renderPgIdent(hba));
      return { created };
    },

    command,

    serviceProgram(logFile) {
      return {
        name: "acc-postgres",
        command: command(),
        directory: layout.root,
        ...(postgresUser ? { user: postgresUser.name } : {}),
        logFile,
        stopSignal: "INT",
        stopTimeoutSec: 60,
      };
    },

    adminConnection() {
      return { host: layout.socket, port, user: superuser, database: "postgres" };
    },

    adminUrl(database = "postgres") {
      return `postgresql://${encodeURIComponent(superuser)}@/${encodeURIComponent(database)}?host=${encodeURIComponent(layout.socket)}&port=${port}`;
    },

    instanceAddress() {
      return { host: "127.0.0.1", port };
    },
  };
}

/** Credentials of an instance's database, for its environment (DATABASE_URL and PG*). */
export interface InstanceDatabase {
  role: string;
  database: string;
  password: string;
  host: string;
  port: number;
  url: string;
}

export interface PgAdminOptions {
  connection: PgTarget;
  exec: Exec;
  /** Folder of pg_dump and pg_restore (findPostgresBin); needed by dump and restore only. */
  bin?: string;
  /** Where instances connect; default the connection's host and port (loopback for a socket). */
  instanceAddress?: { host: string; port: number };
  /** Added to "not reachable" errors: what to check. */
  hint?: string;
}

export interface PgAdmin {
  /** The server's version; fails with the "not reachable" error when it is down. */
  ping(): Promise<{ version: string }>;
  /** Polls ping until the server answers (after a start), up to timeoutMs. */
  waitReady(timeoutMs: number): Promise<void>;
  /** Makes the server reread its config files (pg_hba.conf at once; a new port needs a restart). */
  reloadConfig(): Promise<void>;
  /**
   * The instance's role and database, created when missing. A role that exists gets the given
   * password (or a new one). On failure, what this call created is removed again.
   */
  createInstanceDatabase(name: string, options?: { password?: string }): Promise<InstanceDatabase>;
  /** Ends the database's connections, drops it (and a restore's staged one) and its role; idempotent. */
  dropInstanceDatabase(name: string): Promise<{ database: boolean; role: boolean }>;
  /** Instance names that have a database or a role here (for doctor). */
  listInstanceDatabases(): Promise<{ databases: string[]; roles: string[] }>;
  /** pg_dump --format=custom of the instance's database into file (written whole or not at all). */
  dump(name: string, file: string, options?: { timeoutMs?: number }): Promise<void>;
  /**
   * Restores a dump into a new database beside the instance's (stagedDatabaseName), owned by its
   * role, with the same grants; one left by an earlier attempt is dropped first. The instance's
   * own database is not touched.
   */
  stageRestore(name: string, file: string, options?: { timeoutMs?: number }): Promise<void>;
  /**
   * Puts the staged database in place of the instance's: both renames in one transaction (the
   * instance sees the old database or the restored one, never none), then drops the replaced
   * one. Idempotent: a repeat after a crash at any point finishes it.
   */
  commitRestore(name: string): Promise<void>;
  /** Drops the staged database, if there is one; the instance's is not touched. Idempotent. */
  abortRestore(name: string): Promise<void>;
}

interface ResolvedTarget {
  client: ClientConfig;
  host: string;
  port: number;
  user: string;
  password: string | undefined;
  database: string;
  sslmode: string | undefined;
}

function resolveTarget(target: PgTarget): ResolvedTarget {
  if (typeof target !== "string") {
    return {
      client: { ...target },
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database,
      sslmode: undefined,
    };
  }
  // pg's own parser, so that the Client and the libpq tools read the URL the same way.
  const parsed = parseConnectionString(target);
  const sslmode = typeof parsed.sslmode === "string" ? parsed.sslmode : undefined;
  return {
    client: { connectionString: target },
    host: parsed.host ?? "localhost",
    port: parsed.port ? Number(parsed.port) : 5432,
    user: parsed.user ?? "postgres",
    password: parsed.password === "" ? undefined : parsed.password,
    database: parsed.database ?? "postgres",
    sslmode,
  };
}

/** Where the server is, for messages: the socket file or host:port, never the password. */
export function describeTarget(target: PgTarget): string {
  const { host, port } = resolveTarget(target);
  return host.startsWith("/") ? `${host}/.s.PGSQL.${port}` : `${host}:${port}`;
}

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map(errorText).join("; ");
  }
  return error instanceof Error ? error.message || String(error) : String(error);
}

/**
 * Whether an error means the server could not be talked to at all (as opposed to a refusal
 * or an SQL error): no socket, refused, reset, timed out, starting up or shutting down.
 */
export function isUnreachable(error: unknown): boolean {
  const state = sqlState(error);
  if (state !== undefined) return state === "57P03" || state === "57P01";
  if (!(error instanceof Error)) return false;
  if (error instanceof AggregateError) return error.errors.some(isUnreachable);
  const errno = (error as NodeJS.ErrnoException).code;
  if (typeof errno === "string") {
    return [
      "ECONNREFUSED",
      "ENOENT",
      "ECONNRESET",
      "ETIMEDOUT",
      "EHOSTUNREACH",
      "ENETUNREACH",
      "ENOTFOUND",
      "EAI_AGAIN",
      "EPIPE",
    ].includes(errno);
  }
  return /Connection terminated|timeout|Query read timeout/i.test(error.message);
}

/** Runs pg Client calls against one server, each with its own short-lived connection. */
export function createPgAdmin(options: PgAdminOptions): PgAdmin {
  const target = resolveTarget(options.connection);
  const where = describeTarget(options.connection);
  const hint =
    options.hint ??
    (target.host.startsWith("/")
      ? "is acc booted? acc status shows whether Postgres runs; its log is acc-postgres.log"
      : "check that the server runs and the URL is right");
  const instanceAddress =
    options.instanceAddress ??
    (target.host.startsWith("/")
      ? { host: "127.0.0.1", port: target.port }
      : { host: target.host, port: target.port });

  function unreachable(error: unknown): AccError {
    return new AccError(
      "ACC_FAILED",
      `Postgres is not reachable at ${where}: ${errorText(error)}`,
      { hint, cause: error },
    );
  }

  async function withClient<T>(
    fn: (client: Client) => Promise<T>,
    timeoutMs = QUERY_TIMEOUT_MS,
  ): Promise<T> {
    // pg is loaded on first use: most acc commands never talk to Postgres (CLI start-up time).
    const { default: pg } = await import("pg");
    const client = new pg.Client({
      ...target.client,
      application_name: "acc",
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: timeoutMs,
      statement_timeout: timeoutMs,
    });
    // A connection lost mid-query also rejects that query, which is where it is reported;
    // without a listener the 'error' event would end the process.
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (error) {
      // No end(): a failed connect has already closed its socket.
      const state = sqlState(error);
      if (state?.startsWith("28")) {
        throw new AccError(
          "ACC_FAILED",
          `Postgres at ${where} refused the login of ${target.user}: ${errorText(error)}`,
          { hint: "check the admin user and password", cause: error },
        );
      }
      throw unreachable(error);
    }
    try {
      return await fn(client);
    } catch (error) {
      if (isUnreachable(error)) throw unreachable(error);
      throw error;
    } finally {
      await client.end();
    }
  }

  async function exists(client: Client, sql: string, value: string): Promise<boolean> {
    const result = await client.query(sql, [value]);
    return (result.rowCount ?? 0) > 0;
  }

  const roleExists = (client: Client, role: string): Promise<boolean> =>
    exists(client, "select 1 from pg_roles where rolname = $1", role);
  const databaseExists = (client: Client, db: string): Promise<boolean> =>
    exists(client, "select 1 from pg_database where datname = $1", db);

  async function ping(): Promise<{ version: string }> {
    return withClient(async (client) => {
      const result = await client.query<{ server_version: string }>("show server_version");
      return { version: result.rows[0]?.server_version ?? "" };
    }, CONNECT_TIMEOUT_MS);
  }

  /** libpq's environment for pg_dump and pg_restore: the password stays off the command line. */
  function toolEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      PGHOST: target.host,
      PGPORT: String(target.port),
      PGUSER: target.user,
      PGCONNECT_TIMEOUT: String(CONNECT_TIMEOUT_MS / 1000),
      PGAPPNAME: "acc",
      // Only what is given here counts, not a ~/.pgpass or a service file of the caller.
      PGPASSFILE: "/dev/null",
    };
    if (target.password !== undefined) env.PGPASSWORD = target.password;
    if (target.sslmode !== undefined) env.PGSSLMODE = target.sslmode;
    return env;
  }

  function tool(name: "pg_dump" | "pg_restore"): string {
    if (options.bin === undefined) throw new Error(`createPgAdmin needs bin to run ${name}`);
    return `${options.bin}/${name}`;
  }

  function toolFailed(what: string, error: unknown): unknown {
    if (!(error instanceof ExecError)) return error;
    return new AccError("ACC_FAILED", `${what} failed: ${errorText(error)}`, {
      cause: error,
      details: error.stderr.trim().split("\n").slice(-10).join("\n"),
    });
  }

  return {
    ping,

    async waitReady(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          await ping();
          return;
        } catch (error) {
          if (!(error instanceof AccError) || Date.now() > deadline) throw error;
          if (!isUnreachable(error.cause)) throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },

    async reloadConfig() {
      await withClient(async (client) => {
        await client.query("select pg_reload_conf()");
      });
    },

    async createInstanceDatabase(name, createOptions = {}) {
      const db = instanceDatabaseName(name);
      const ident = quoteIdent(db);
      const password = createOptions.password ?? randomBytes(24).toString("base64url");
      const verifier = quoteLiteral(scramVerifier(password, randomBytes(16)));
      await withClient(async (client) => {
        let createdRole = false;
        let createdDatabase = false;
        try {
          if (!(await roleExists(client, db))) {
            try {
              await client.query(
                `create role ${ident} login nosuperuser nocreatedb nocreaterole noreplication password ${verifier}`,
              );
              createdRole = true;
            } catch (error) {
              // Made by another caller meanwhile: then set its password below, as for any.
              if (sqlState(error) !== "42710") throw error;
            }
          }
          if (!createdRole) await client.query(`alter role ${ident} login password ${verifier}`);
          const su = await client.query<{ rolsuper: boolean }>(
            "select rolsuper from pg_roles where rolname = current_user",
          );
          // An admin that is not superuser (a managed server's CREATEROLE user) must be a
          // member of the role to give it a database and to drop it later.
          if (su.rows[0]?.rolsuper !== true) await client.query(`grant ${ident} to current_user`);
          if (!(await databaseExists(client, db))) {
            try {
              // template0: a sysadmin's additions to template1 belong to no instance.
              await client.query(
                `create database ${ident} owner ${ident} template template0 encoding 'UTF8'`,
              );
              createdDatabase = true;
            } catch (error) {
              if (sqlState(error) !== "42P04") throw error;
            }
          }
          if (!createdDatabase) await client.query(`alter database ${ident} owner to ${ident}`);
          // Only its role may connect (pg_hba's samerole says the same on the managed cluster).
          await client.query(`revoke all on database ${ident} from public`);
          await client.query(`grant connect, temporary on database ${ident} to ${ident}`);
        } catch (error) {
          if (!createdRole && !createdDatabase) throw error;
          try {
            if (createdDatabase)
              await client.query(`drop database if exists ${ident} with (force)`);
            if (createdRole) await client.query(`drop role if exists ${ident}`);
          } catch (cleanupError) {
            throw new AccError(
              "ACC_FAILED",
              `creating database ${db} failed (${errorText(error)}), and so did removing what it made: ${errorText(cleanupError)}`,
              { cause: error, hint: "acc doctor --repair removes it" },
            );
          }
          throw error;
        }
      }, CREATE_DATABASE_TIMEOUT_MS);
      const { host, port } = instanceAddress;
      const hostPart = host.includes(":") ? `[${host}]` : host;
      return {
        role: db,
        database: db,
        password,
        host,
        port,
        url: `postgresql://${encodeURIComponent(db)}:${encodeURIComponent(password)}@${hostPart}:${port}/${encodeURIComponent(db)}`,
      };
    },

    async dropInstanceDatabase(name) {
      const db = instanceDatabaseName(name);
      const ident = quoteIdent(db);
      return withClient(async (client) => {
        const hadDatabase = await databaseExists(client, db);
        // FORCE ends the instance's own sessions first (a stopped instance can still hold one).
        if (hadDatabase) await client.query(`drop database if exists ${ident} with (force)`);
        // A restore's staged or replaced database is the role's too: the role cannot go before.
        for (const other of [stagedDatabaseName(name), replacedDatabaseName(name)]) {
          await client.query(`drop database if exists ${quoteIdent(other)} with (force)`);
        }
        const hadRole = await roleExists(client, db);
        if (hadRole) {
          // Grants made to the role in the admin's database would otherwise block the drop.
          await client.query(`drop owned by ${ident}`);
          await client.query(`drop role if exists ${ident}`);
        }
        return { database: hadDatabase, role: hadRole };
      }, CREATE_DATABASE_TIMEOUT_MS);
    },

    async listInstanceDatabases() {
      return withClient(async (client) => {
        const dbs = await client.query<{ name: string }>(
          "select datname as name from pg_database where datname like 'i\\_%' order by 1",
        );
        const roles = await client.query<{ name: string }>(
          "select rolname as name from pg_roles where rolname like 'i\\_%' order by 1",
        );
        const names = (rows: { name: string }[]): string[] =>
          rows.map((r) => instanceOfDatabase(r.name)).filter((n) => n !== undefined);
        return { databases: names(dbs.rows), roles: names(roles.rows) };
      });
    },

    async dump(name, file, dumpOptions = {}) {
      const db = instanceDatabaseName(name);
      // A clear "not reachable" beats pg_dump's own wording of the same thing.
      await ping();
      const partial = `${file}.partial`;
      try {
        await options.exec(
          tool("pg_dump"),
          ["--format=custom", "--no-password", `--file=${partial}`, `--dbname=${db}`],
          { env: toolEnv(), timeoutMs: dumpOptions.timeoutMs ?? TOOL_TIMEOUT_MS },
        );
        await rename(partial, file);
      } catch (error) {
        await rm(partial, { force: true });
        throw toolFailed(`pg_dump of ${db}`, error);
      }
    },

    async stageRestore(name, file, restoreOptions = {}) {
      const role = instanceDatabaseName(name);
      const staged = stagedDatabaseName(name);
      try {
        await access(file, constants.R_OK);
      } catch (error) {
        if (hasErrno(error, "ENOENT")) {
          throw new AccError("ACC_NOT_FOUND", `no database dump at ${file}`, { cause: error });
        }
        throw error;
      }
      await withClient(async (client) => {
        const ident = quoteIdent(staged);
        const owner = quoteIdent(role);
        if (!(await roleExists(client, role))) {
          throw new AccError("ACC_FAILED", `instance ${name} has no Postgres role ${role}`, {
            hint: "acc doctor says what is half-made",
          });
        }
        await client.query(`drop database if exists ${ident} with (force)`);
        await client.query(
          `create database ${ident} owner ${owner} template template0 encoding 'UTF8'`,
        );
        await client.query(`revoke all on database ${ident} from public`);
        await client.query(`grant connect, temporary on database ${ident} to ${owner}`);
      }, CREATE_DATABASE_TIMEOUT_MS);
      try {
        await options.exec(
          tool("pg_restore"),
          [
            // Objects end up owned by the instance's role whoever owned them in the dump, and
            // grants to roles of another server (or instance) are not replayed.
            "--no-owner",
            "--no-privileges",
            `--role=${role}`,
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            `--dbname=${staged}`,
            file,
          ],
          { env: toolEnv(), timeoutMs: restoreOptions.timeoutMs ?? TOOL_TIMEOUT_MS },
        );
      } catch (error) {
        throw toolFailed(`pg_restore into ${staged}`, error);
      }
    },

    async commitRestore(name) {
      const current = instanceDatabaseName(name);
      const staged = stagedDatabaseName(name);
      const replaced = replacedDatabaseName(name);
      await withClient(async (client) => {
        if (await databaseExists(client, staged)) {
          // Only a replaced database of a finished commit can be here: this commit's is not made yet.
          await client.query(`drop database if exists ${quoteIdent(replaced)} with (force)`);
          // A rename needs the databases without sessions (the instance is stopped; a session it
          // left, or pg_restore's of a killed restore, ends here).
          await client.query(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = any($1) and pid <> pg_backend_pid()",
            [[current, staged]],
          );
          await client.query("begin");
          try {
            if (await databaseExists(client, current)) {
              await client.query(
                `alter database ${quoteIdent(current)} rename to ${quoteIdent(replaced)}`,
              );
            }
            await client.query(
              `alter database ${quoteIdent(staged)} rename to ${quoteIdent(current)}`,
            );
            await client.query("commit");
          } catch (error) {
            await client.query("rollback");
            throw error;
          }
        }
        await client.query(`drop database if exists ${quoteIdent(replaced)} with (force)`);
      }, CREATE_DATABASE_TIMEOUT_MS);
    },

    async abortRestore(name) {
      const staged = stagedDatabaseName(name);
      await withClient(async (client) => {
        await client.query(`drop database if exists ${quoteIdent(staged)} with (force)`);
      }, CREATE_DATABASE_TIMEOUT_MS);
    },
  };
}

/** The libpq environment an instance gets for its database, besides DATABASE_URL. */
export function instanceDatabaseEnv(db: InstanceDatabase): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    PGHOST: db.host,
    PGPORT: String(db.port),
    PGUSER: db.role,
    PGPASSWORD: db.password,
    PGDATABASE: db.database,
  };
}
