import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { exec } from "../../src/lib/exec.js";
import { createUsers, instanceUserName } from "../../src/services/users.js";
import { freePort, isAlive, makeTempDir, removeDir, waitFor } from "./common.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The built CLI, as a user runs it (the bundle `npm run build` makes). */
export const ACC_BIN = path.resolve(here, "../../acc.mjs");
/** acc's package folder (models/, package.json), above dist/. */
export const ACC_ROOT = path.resolve(here, "../../..");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface AccHome {
  home: string;
  httpPort: number;
  env: NodeJS.ProcessEnv;
  /** `signal` kills the CLI process (its result then has the code 1). */
  run(args: string[], options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<RunResult>;
  /** Runs and fails unless the exit code is 0. */
  ok(args: string[]): Promise<string>;
  /** GET (or any method) through acc's nginx with the given Host. */
  request(
    host: string,
    options?: { path?: string; method?: string; body?: string; timeoutMs?: number },
  ): Promise<HttpAnswer>;
  /** Stops everything the home runs (acc shutdown, then by pid what is left) and removes it. */
  cleanup(): Promise<void>;
}

export interface HttpAnswer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  ms: number;
}

export function httpRequest(
  port: number,
  host: string,
  options: {
    path?: string;
    method?: string;
    body?: string;
    timeoutMs?: number;
    headers?: Record<string, string>;
    /** HTTPS, the chain and the name (host without its port) checked against this CA. */
    tls?: { ca: string };
  } = {},
): Promise<HttpAnswer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = (options.tls ? https : http).request(
      {
        host: "127.0.0.1",
        port,
        path: options.path ?? "/",
        method: options.method ?? "GET",
        headers: { host, ...options.headers },
        agent: false,
        timeout: options.timeoutMs ?? 10_000,
        ...(options.tls ? { servername: host.split(":")[0], ca: options.tls.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString("utf8"),
            headers: res.headers,
            ms: Date.now() - started,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`request to ${host} timed out`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

async function pidFrom(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, "utf8")).trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const SLICES = path.join(os.tmpdir(), "acc-test-port-slices");

/**
 * A slice of 100 instance ports that no other test home on this machine uses meanwhile: two
 * homes with the same ports would fight over them (acc-ports of each holds them). Below
 * Linux's ephemeral range (32768+), so no outgoing connection's source port blocks an
 * instance's bind, and below acc's default range, so a real acc home here is not hit. A claim
 * is a folder made atomically, holding the claimer's pid: one left by a dead test is reused.
 */
async function claimPortSlice(): Promise<{ base: number; release(): Promise<void> }> {
  await mkdir(SLICES, { recursive: true });
  for (let attempt = 0; attempt < 1000; attempt++) {
    const base = 10000 + Math.floor(Math.random() * 100) * 100;
    const claim = path.join(SLICES, String(base));
    try {
      await mkdir(claim);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = await pidFrom(path.join(claim, "pid"));
      if (owner === undefined || isAlive(owner)) continue;
      await rm(claim, { recursive: true, force: true });
      continue;
    }
    await writeFile(path.join(claim, "pid"), `${process.pid}\n`);
    return { base, release: () => rm(claim, { recursive: true, force: true }) };
  }
  throw new Error("no free slice of instance ports for a test home");
}

/**
 * A fresh home on free ports, initialised (not booted). `env` adds ACC_* overrides, such as
 * ACC_POSTGRES=external for a test that needs no database and should not start the cluster.
 */
/**
 * A test home served over HTTPS, without a database (no Postgres needed) nor idle stops:
 * tls, its port and the domain, with http_redirect when asked; `extra` is added as given.
 */
export function tlsHomeEnv(options: {
  domain: string;
  httpsPort: number;
  tls: "manual" | "acme";
  redirect?: boolean;
  extra?: NodeJS.ProcessEnv;
}): NodeJS.ProcessEnv {
  return {
    ACC_POSTGRES: "external",
    ACC_POSTGRES_ADMIN_URL: "postgres://nobody@127.0.0.1:1/x",
    ACC_MONITOR_INTERVAL: "1h",
    ACC_DOMAIN: options.domain,
    ACC_TLS: options.tls,
    ACC_HTTPS_PORT: String(options.httpsPort),
    ...(options.redirect === true ? { ACC_HTTP_REDIRECT: "true" } : {}),
    ...options.extra,
  };
}

/**
 * For a test's t.after: the end of each of the home's logs that says something went wrong
 * (nginx's emerg or crit lines by default), as diagnostics.
 */
export async function logDiagnostics(
  t: { diagnostic(message: string): void },
  home: string,
  logs: [file: string, worth: RegExp][] = [["nginx/logs/error.log", /\[(emerg|crit)\]/]],
): Promise<void> {
  for (const [file, worth] of logs) {
    const log = await readFile(path.join(home, file), "utf8").catch(() => "");
    if (worth.test(log)) t.diagnostic(`${file}:\n${log.slice(-3000)}`);
  }
}

export async function createAccHome(options: { env?: NodeJS.ProcessEnv } = {}): Promise<AccHome> {
  const home = await makeTempDir("acc-home-");
  // A test that must know the port first (a CA validating on it) gives ACC_HTTP_PORT itself.
  const httpPort = Number(options.env?.ACC_HTTP_PORT ?? (await freePort()));
  const serverPort = await freePort();
  const postgresPort = await freePort();
  const slice = await claimPortSlice();
  const base = slice.base;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ACC_HOME: home,
    ACC_HTTP_PORT: String(httpPort),
    ACC_SERVER_PORT: String(serverPort),
    ACC_POSTGRES_PORT: String(postgresPort),
    ACC_LISTEN_ADDRESS: "127.0.0.1",
    ACC_INSTANCE_PORT_MIN: String(base),
    ACC_INSTANCE_PORT_MAX: String(base + 99),
    NO_COLOR: "1",
    ...options.env,
  };
  const run = (
    args: string[],
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<RunResult> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [ACC_BIN, ...args],
        {
          env,
          timeout: options.timeoutMs ?? 120_000,
          encoding: "utf8",
          ...(options.signal !== undefined ? { signal: options.signal } : {}),
        },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  const accHome: AccHome = {
    home,
    httpPort,
    env,
    run,
    async ok(args) {
      const result = await run(args);
      if (result.code !== 0)
        throw new Error(`acc ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
      return result.stdout;
    },
    request: (host, options) => httpRequest(httpPort, host, options),
    async cleanup() {
      const supervisordPid = await pidFrom(path.join(home, "run/supervisord.pid"));
      const nginxPid = await pidFrom(path.join(home, "run/nginx.pid"));
      const list = await run(["list", "--json"]);
      // The folders name every instance even when the CLI cannot answer.
      const folders = await readdir(path.join(home, "instances")).catch(() => [] as string[]);
      const listed =
        list.code === 0 ? (JSON.parse(list.stdout) as { name: string }[]).map((i) => i.name) : [];
      const names = [...new Set([...listed, ...folders.filter((f) => !f.startsWith("."))])];
      if (supervisordPid !== undefined && isAlive(supervisordPid))
        await run(["shutdown"], { timeoutMs: 120_000 });
      for (const pid of [supervisordPid, nginxPid]) {
        if (pid !== undefined && isAlive(pid)) {
          process.kill(pid, "SIGTERM");
          await waitFor(
            `pid ${pid} to exit`,
            () => (isAlive(pid) ? undefined : true),
            15_000,
          ).catch(() => {
            process.kill(pid, "SIGKILL");
          });
        }
      }
      // Whatever a test left: its instances' system users (as root) go with the home.
      if (process.getuid?.() === 0) {
        const users = createUsers({ exec });
        for (const name of names) await users.remove(instanceUserName(name));
      }
      await removeDir(home);
      await slice.release();
    },
  };
  const init = await run(["init", "--no-install"]);
  if (init.code !== 0) {
    await removeDir(home);
    await slice.release();
    throw new Error(`acc init failed: ${init.stderr}`);
  }
  return accHome;
}

/**
 * Stops the home's acc server (supervisord keeps it stopped): the CLI then does the work in
 * its own process, as when the server is down, so that killing the CLI kills the operation.
 */
export async function stopAccServer(acc: AccHome): Promise<void> {
  const { openContext } = await import("../../src/services/open.js");
  const ctx = await openContext({ home: acc.home, env: acc.env, accRoot: ACC_ROOT });
  try {
    await ctx.processes.stopService("acc-server");
  } finally {
    await ctx.store.close();
  }
}

/** The pid of the home's acc server, from /proc (the process whose command line names it). */
export async function accServerPid(acc: AccHome): Promise<number> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const args = cmdline.split("\0");
    if (
      args.includes("server") &&
      args.includes(acc.home) &&
      args.some((a) => a.endsWith("acc.mjs"))
    )
      return Number(entry);
  }
  throw new Error(`no acc server of ${acc.home} runs`);
}
