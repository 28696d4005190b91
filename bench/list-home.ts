// What bench/list and bench/api share: a home with N instance rows written straight into its
// store (a create costs ~0.3 s each; bench/scale measures creates), and an `acc server` run by
// hand on it (its API on HOME/run/api.sock), stopped by its pid. Without `acc boot`: a booted
// home's acc-ports would hold a port for each of the N stopped instances.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { homePaths } from "../src/core/paths.js";
import { ensureSharedCode } from "../src/services/model-code.js";
import { createModelRegistry } from "../src/services/models.js";
import { openContext } from "../src/services/open.js";
import type { InstancesTable } from "../src/store/schema.js";
import { ACC_BIN, ACC_ROOT, type AccHome } from "../test/harness/acc.js";

/**
 * N rows of hello instances named PREFIX0... (prefix: the caller's, so names never collide
 * with other users of the machine's instance users), states and activity varied, in one
 * transaction. Every tenth is "running" in the store (nothing runs: no memory figure).
 */
export async function seedInstances(home: string, n: number, prefix: string): Promise<void> {
  const hello = await createModelRegistry({
    bundledDir: path.join(ACC_ROOT, "models"),
    userDir: "/nonexistent",
  }).get("hello");
  const db = new BetterSqlite3(path.join(home, "state.db"), { timeout: 10_000 });
  try {
    const now = Date.now();
    const insert = db.prepare(
      `insert into instances (name, model, model_version, model_hash, state, operation, port,
         hosts, params, idle_timeout, created_at, updated_at, state_changed_at, last_activity_at,
         last_error, database, limits)
       values (@name, @model, @model_version, @model_hash, @state, @operation, @port, @hosts,
         @params, @idle_timeout, @created_at, @updated_at, @state_changed_at, @last_activity_at,
         @last_error, @database, @limits)`,
    );
    const host = db.prepare("insert into hosts (host, instance) values (?, ?)");
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const name = `${prefix}${i}`;
        const at = new Date(now - i * 61_000).toISOString();
        const row: InstancesTable = {
          name,
          model: "hello",
          model_version: hello.manifest.version,
          model_hash: hello.hash,
          state: i % 10 === 0 ? "running" : "stopped",
          operation: null,
          port: 20_000 + i,
          hosts: JSON.stringify([`${name}.localhost`]),
          params: JSON.stringify({ greeting: "Hello" }),
          idle_timeout: null,
          created_at: at,
          updated_at: at,
          state_changed_at: at,
          last_activity_at: i % 3 === 0 ? null : at,
          last_error: null,
          database: null,
          limits: null,
        };
        insert.run(row);
        host.run(`${name}.localhost`, name);
      }
    })();
  } finally {
    db.close();
  }
}

/**
 * The shared code folder of the bundled hello model, as a create makes it: the instance page
 * (acc show) reads an instance's manifest from there.
 */
export async function prepareHelloCode(acc: AccHome): Promise<void> {
  const ctx = await openContext({ home: acc.home, env: acc.env, accRoot: ACC_ROOT });
  try {
    await ensureSharedCode(ctx, await ctx.models.get("hello"));
  } finally {
    await ctx.store.close();
  }
}

/** Removes the rows again, so the harness's cleanup has no instance users to look for. */
export function unseedInstances(home: string): void {
  const db = new BetterSqlite3(path.join(home, "state.db"), { timeout: 10_000 });
  try {
    db.exec("delete from hosts; delete from instances;");
  } finally {
    db.close();
  }
}

/** A GET over the home's API socket: status and body. */
export function apiGet(
  socketPath: string,
  urlPath: string,
  agent?: http.Agent,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath, agent: agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`GET ${urlPath}: no answer in 60 s`)));
  });
}

export interface RunningServer {
  pid: number;
  socketPath: string;
  stop(): Promise<void>;
}

/** `acc server` on the home (with `bin`, another build's acc.mjs when given), up when its API answers. */
export async function startAccServer(acc: AccHome, bin = ACC_BIN): Promise<RunningServer> {
  const socketPath = homePaths(acc.home).apiSocket;
  const child: ChildProcess = spawn(process.execPath, [bin, "server"], {
    env: acc.env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  const pid = child.pid;
  if (pid === undefined) throw new Error("acc server did not start");
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    process.kill(pid, "SIGTERM");
    const timer = setTimeout(() => process.kill(pid, "SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`acc server exited: ${log}`);
    const answer = await apiGet(socketPath, "/api/v1/instances?limit=1").catch(() => undefined);
    if (answer?.status === 200) return { pid, socketPath, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`acc server's API did not answer in 60 s: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
