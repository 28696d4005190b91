import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { isValidInstanceName } from "../../core/validate.js";

/** Where the managed cluster keeps its files, all under HOME/postgres. */
export interface ClusterLayout {
  /** HOME/postgres: owned by postgres_user, 0700, so only it and root get further. */
  root: string;
  /** The data directory (initdb's -D). */
  data: string;
  /**
   * The socket folder. Not HOME/run: that folder is root's (0700) and Postgres, running
   * as postgres_user, must create its socket and lock file in it.
   */
  socket: string;
}

export function clusterLayout(postgresDir: string): ClusterLayout {
  return { root: postgresDir, data: `${postgresDir}/data`, socket: `${postgresDir}/run` };
}

export interface PostgresConfOptions {
  port: number;
  socketDir: string;
  /** Default 32MB: hundreds of mostly idle small databases need little cache each. */
  sharedBuffers?: string;
  maxConnections?: number;
}

/** The file name, in the data directory, whose settings override acc's; acc never writes it. */
export const LOCAL_CONF = "local.conf";

// A DNS label, as instance names are (validate.ts): the only names turned into roles here.
const ROLE_OR_USER = /^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/;

/** postgresql.conf for the managed cluster: loopback TCP, socket in its own folder, logs on stderr. */
export function renderPostgresConf(options: PostgresConfOptions): string {
  checkPort(options.port);
  const lines = [
    "# Written by acc: changes here are overwritten. Put your own settings in local.conf.",
    // Instances reach Postgres over loopback TCP with a password; nothing else may.
    `listen_addresses = '127.0.0.1'`,
    `port = ${options.port}`,
    `unix_socket_directories = ${quoteConfValue(options.socketDir)}`,
    // The folder's mode is what keeps other users off the socket: see renderPgHba.
    "unix_socket_permissions = 0700",
    `max_connections = ${options.maxConnections ?? 200}`,
    `shared_buffers = ${quoteConfValue(options.sharedBuffers ?? "32MB")}`,
    "dynamic_shared_memory_type = posix",
    "password_encryption = 'scram-sha-256'",
    // supervisord captures stderr into the service's log file and rotates it.
    "log_destination = 'stderr'",
    "logging_collector = off",
    "log_line_prefix = '%m [%p] %q%u@%d '",
    "log_timezone = 'UTC'",
    "timezone = 'UTC'",
    "datestyle = 'iso, mdy'",
    "lc_messages = 'C.UTF-8'",
    "lc_monetary = 'C.UTF-8'",
    "lc_numeric = 'C.UTF-8'",
    "lc_time = 'C.UTF-8'",
    "default_text_search_config = 'pg_catalog.english'",
    `include_if_exists = '${LOCAL_CONF}'`,
    "",
  ];
  return lines.join("\n");
}

export interface PgHbaOptions {
  /** The cluster's superuser role (initdb -U), which acc connects as over the socket. */
  superuser: string;
  /**
   * OS users allowed to connect over the socket as the superuser: acc's own (root) and the
   * cluster's owner, never a user that an exposed process runs as (nginx's, an instance's).
   */
  adminOsUsers: readonly string[];
}

/** The ident map (pg_ident.conf) that names the OS users who may be the superuser. */
export const IDENT_MAP = "acc";

/**
 * pg_hba.conf: the socket is for acc's admin connection (peer through the ident map, so even a
 * socket folder with a wrong mode lets no other OS user in); TCP on loopback is for instances,
 * with a password, and each role reaches only the database of the same name (samerole).
 */
export function renderPgHba(options: PgHbaOptions): string {
  checkRole(options.superuser);
  return [
    "# Written by acc: changes here are overwritten.",
    "# TYPE  DATABASE  USER  ADDRESS       METHOD",
    `local   all       all                 peer map=${IDENT_MAP}`,
    // samerole: instance role i_foo may open database i_foo and no other, even one whose
    // CONNECT privilege is still granted to PUBLIC (postgres, template1).
    "host    samerole  all   127.0.0.1/32  scram-sha-256",
    "host    samerole  all   ::1/128       scram-sha-256",
    "",
  ].join("\n");
}

export function renderPgIdent(options: PgHbaOptions): string {
  checkRole(options.superuser);
  const lines = ["# Written by acc: changes here are overwritten.", "# MAP  OS-USER  ROLE"];
  for (const user of new Set(options.adminOsUsers)) {
    checkRole(user);
    lines.push(`${IDENT_MAP}  ${user}  ${options.superuser}`);
  }
  lines.push("");
  return lines.join("\n");
}

/** Role and database of an instance: the same name, so pg_hba's samerole matches them. */
export function instanceDatabaseName(instance: string): string {
  if (!isValidInstanceName(instance)) {
    throw new Error(`invalid instance name for a database: ${JSON.stringify(instance)}`);
  }
  // Kept as is ('-' included) and always quoted; 'i_' keeps instance roles apart from others.
  return `i_${instance}`;
}

/**
 * Where a restore puts the backup's database before its commit ("r_"), and what the instance's
 * database is renamed to by the commit until it is dropped ("o_"). Not "i_": they are nobody's
 * role, and listInstanceDatabases never takes them for an instance.
 */
export function stagedDatabaseName(instance: string): string {
  return `r_${instanceDatabaseName(instance).slice(2)}`;
}

export function replacedDatabaseName(instance: string): string {
  return `o_${instanceDatabaseName(instance).slice(2)}`;
}

/** The instance name back from a role or database name, or undefined when it is not one of acc's. */
export function instanceOfDatabase(database: string): string | undefined {
  if (!database.startsWith("i_")) return undefined;
  const name = database.slice(2);
  return isValidInstanceName(name) ? name : undefined;
}

/** A quoted SQL identifier: always quoted, so '-' and upper case survive. */
export function quoteIdent(name: string): string {
  if (name === "" || name.includes("\0")) {
    throw new Error(`invalid SQL identifier: ${JSON.stringify(name)}`);
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A SQL string literal that is right whatever standard_conforming_strings says: with a
 * backslash, the E'' form with backslashes doubled (as pg's escapeLiteral does).
 */
export function quoteLiteral(text: string): string {
  if (text.includes("\0")) throw new Error("a SQL literal cannot contain NUL");
  const quoted = text.replaceAll("'", "''");
  return text.includes("\\") ? `E'${quoted.replaceAll("\\", "\\\\")}'` : `'${quoted}'`;
}

/**
 * The SCRAM-SHA-256 verifier Postgres stores for a password (RFC 5802/7677, as libpq's
 * PQencryptPasswordConn makes it). Sent instead of the password, so the password never appears
 * in a statement the server could log. The password must be ASCII (SASLprep is then a no-op).
 */
export function scramVerifier(password: string, salt: Buffer, iterations = 4096): string {
  // Non-ASCII would need SASLprep, which this does not do: refusing is safer than a wrong hash.
  if (!/^[\x20-\x7e]+$/.test(password)) throw new Error("password must be printable ASCII");
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** A postgresql.conf string value. */
function quoteConfValue(value: string): string {
  if (/[\n\r\0]/.test(value))
    throw new Error(`invalid postgresql.conf value: ${JSON.stringify(value)}`);
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

function checkRole(name: string): void {
  if (!ROLE_OR_USER.test(name))
    throw new Error(`invalid role or user name: ${JSON.stringify(name)}`);
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid port ${port}`);
}
