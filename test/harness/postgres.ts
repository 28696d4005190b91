import { spawn, type ChildProcess } from "node:child_process";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { TestContext } from "node:test";
import { Client } from "pg";
import { parseEnvFile } from "../../src/core/instance-env.js";
import { homePaths } from "../../src/core/paths.js";
import {
  createManagedPostgres,
  createPgAdmin,
  findPostgresBin,
  quoteIdent,
  type ManagedPostgres,
  type PgAdmin,
  type PgConnection,
  type ServiceUser,
} from "../../src/drivers/postgres/index.js";
import { isAccError } from "../../src/lib/errors.js";
import { exec } from "../../src/lib/exec.js";
import { writeFileAtomic } from "../../src/lib/files.js";
import { createUsers } from "../../src/services/users.js";
import type { AccHome } from "./acc.js";
import { freePort, makeTempDir, removeDir, requireBinary, waitFor } from "./common.js";

/** An instance's DATABASE_URL, from its env file. */
export async function instanceDatabaseUrl(acc: AccHome, name: string): Promise<string> {
  const env = parseEnvFile(await readFile(path.join(acc.home, "instances", name, "env"), "utf8"));
  assert.ok(env.DATABASE_URL, `${name} has a DATABASE_URL`);
  return env.DATABASE_URL;
}

/** One query on a database, in a connection of its own. */
export async function queryDatabase<T>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** A real Postgres cluster for one test file: its own folder, port and socket. */
export interface TestPostgres {
  bin: string;
  port: number;
  dir: string;
  managed: ManagedPostgres;
  /** The driver's admin client on this cluster (superuser over the socket). */
  admin: PgAdmin;
  adminConnection: PgConnection;
  /** As root, the OS user the cluster runs as (acc's default postgres_user). */
  postgresUser: ServiceUser | undefined;
  /** A new empty database, and a URL to it as the superuser over the socket. */
  freshDatabase(): Promise<{ name: string; url: string }>;
  /** What the server wrote on stdout and stderr so far. */
  log(): string;
  /** Stops the server (fast shutdown, SIGKILL after a timeout); fails if it had died before. */
  stop(): Promise<void>;
}

/** As root: the user the cluster runs as (Postgres refuses root), as acc init makes it. */
async function testPostgresUser(): Promise<ServiceUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const name = "acc_postgres";
  return { name, ...(await createUsers({ exec }).ensureService(name)) };
}

async function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts a cluster for the test file (initdb through the driver, then postgres in the
 * foreground). Registers its stop and the folder's removal with t.after. Returns undefined
 * after t.skip when the binaries are missing (a failure under CI=true).
 */
export async function startTestPostgres(t: TestContext): Promise<TestPostgres | undefined> {
  let bin: string;
  try {
    bin = await findPostgresBin(exec);
  } catch (error) {
    if (!isAccError(error, "ACC_ENV")) throw error;
    const skip = requireBinary(false, "postgres");
    t.skip(skip || "postgres is not installed");
    return undefined;
  }

  const dir = await makeTempDir("acc-pg-");
  // Set once spawned; stop() is registered before, so a failed start still cleans up.
  const server: { child?: ChildProcess } = {};
  let stopping = false;
  let stopped = false;
  const output: string[] = [];
  let outputSize = 0;
  const keep = (chunk: Buffer): void => {
    output.push(chunk.toString("utf8"));
    outputSize += chunk.length;
    while (outputSize > 256 * 1024 && output.length > 1) outputSize -= output.shift()?.length ?? 0;
  };
  const log = (): string => output.join("");

  async function stop(): Promise<void> {
    const child = server.child;
    if (stopped || !child) return;
    stopped = true;
    const died = !stopping && (child.exitCode !== null || child.signalCode !== null);
    stopping = true;
    const pid = child.pid;
    if (!died && pid !== undefined) {
      // The whole process group: the postmaster and its backends (SIGINT: fast shutdown).
      process.kill(-pid, "SIGINT");
      if (!(await waitExit(child, 20_000))) {
        process.kill(-pid, "SIGKILL");
        await waitExit(child, 5_000);
      }
    }
    if (died) {
      throw new Error(
        `postgres died during the tests (exit ${child.exitCode ?? child.signalCode}):\n${log()}`,
      );
    }
  }

  t.after(async () => {
    try {
      await stop();
    } finally {
      await removeDir(dir);
    }
  });

  const port = await freePort();
  const paths = homePaths(dir);
  const postgresUser = await testPostgresUser();
  const managed = createManagedPostgres({
    paths,
    exec,
    port,
    bin,
    ...(postgresUser ? { postgresUser } : {}),
    sharedBuffers: "16MB",
    maxConnections: 50,
  });
  await managed.init();
  // Durability is not what these tests check, and it costs seconds per CREATE DATABASE.
  await writeFileAtomic(
    `${managed.layout.data}/local.conf`,
    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
    { mode: 0o600, ...(postgresUser ? { uid: postgresUser.uid, gid: postgresUser.gid } : {}) },
  );

  const [file, ...args] = managed.command();
  if (file === undefined) throw new Error("empty postgres command");
  const child = spawn(file, args, {
    cwd: managed.layout.root,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    ...(postgresUser ? { uid: postgresUser.uid, gid: postgresUser.gid } : {}),
  });
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  server.child = child;
  const running = child;

  const adminConnection = managed.adminConnection();
  const admin = createPgAdmin({ connection: adminConnection, exec, bin });
  await waitFor(
    "postgres to accept connections",
    async () => {
      if (running.exitCode !== null || running.signalCode !== null) {
        throw new Error(`postgres exited at start:\n${log()}`);
      }
      await admin.ping();
      return true;
    },
    30_000,
    50,
  ).catch((error: unknown) => {
    throw new Error(`postgres did not start: ${String(error)}\n${log()}`, { cause: error });
  });

  let databases = 0;
  return {
    bin,
    port,
    dir,
    managed,
    admin,
    adminConnection,
    postgresUser,
    async freshDatabase() {
      if (running.exitCode !== null || running.signalCode !== null) {
        throw new Error(`postgres is not running:\n${log()}`);
      }
      const name = `t_${process.pid}_${++databases}`;
      const client = new Client({ ...adminConnection, connectionTimeoutMillis: 5_000 });
      await client.connect();
      try {
        await client.query(`create database ${quoteIdent(name)}`);
      } finally {
        await client.end();
      }
      return { name, url: managed.adminUrl(name) };
    },
    log,
    stop,
  };
}
