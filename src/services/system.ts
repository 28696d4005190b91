import { chown, mkdir, readFile, statfs } from "node:fs/promises";
import path from "node:path";
import { CONFIG_KEYS, envKey, renderConfigFile, type AccConfig } from "../core/config.js";
import { homePaths } from "../core/paths.js";
import { AccError, isAccError } from "../lib/errors.js";
import { exec, ExecError, type Exec } from "../lib/exec.js";
import { readFileIfExists, writeFileAtomic, pathExists } from "../lib/files.js";
import { childLogDir } from "../drivers/supervisord/render.js";
import type { ServiceProgram } from "../drivers/supervisord/index.js";
import { certificateWarnings } from "./acme.js";
import type { AccContext } from "./context.js";
import { managedPostgres, pgAdmin } from "./databases.js";
import { findPostgresBin } from "../drivers/postgres/index.js";
import { probeHealth } from "./health.js";
import {
  describeHomeProcesses,
  findHomeProcesses,
  stopHomeProcesses,
  summarizeHomeProcess,
  type HomeProcess,
  type HomeProcessSummary,
} from "./home-processes.js";
import {
  checkServicePortsFree,
  describePortHolder,
  firstFreePort,
  portFree,
  type ServicePort,
  type ServicePortKey,
} from "./service-ports.js";
import { createSemaphore } from "./wake.js";
import { ensureServiceUsers, restrictHome } from "./home-access.js";
import { isRootUser } from "../lib/home.js";
import { portKeeperProgram } from "../drivers/ports/index.js";
import { migrateInstances, type MigrationReport } from "./migrate.js";
import { holdPorts } from "./ports.js";
import { probeSandbox, sandboxState } from "./sandbox.js";
import { cgroupsState, instanceCgroups, probeCgroups } from "./cgroups.js";

/** Debian packages acc needs, with the binary that shows each is there. */
export const REQUIRED_PACKAGES = [
  { binary: "nginx", package: "nginx-light", paths: ["/usr/sbin/nginx"] },
  { binary: "supervisord", package: "supervisor", paths: ["/usr/bin/supervisord"] },
  // Each instance's sandbox; without it instances run unsandboxed (acc status says so).
  { binary: "bwrap", package: "bubblewrap", paths: ["/usr/bin/bwrap"] },
] as const;

async function findBinary(paths: readonly string[]): Promise<string | undefined> {
  for (const candidate of paths) if (await pathExists(candidate)) return candidate;
  return undefined;
}

export interface InitOptions {
  home: string;
  domain?: string;
  httpPort?: number;
  install: boolean;
  exec?: Exec;
  env: NodeJS.ProcessEnv;
}

export interface InitResult {
  home: string;
  config: string;
  created: boolean;
  installed: string[];
  /** Ports a new acc.toml sets because their defaults were taken (by another acc home, say). */
  ports: PortChoice[];
}

export interface PortChoice {
  key: ServicePortKey;
  default: number;
  port: number;
  /** Who holds the default, in words. */
  holder: string;
}

/**
 * For a new acc.toml: the service ports whose default is taken here (another acc home on this
 * machine, say) get the first free port after it. Keys the environment sets are left alone
 * (the environment wins over acc.toml), and so is a port given on the command line.
 */
async function choosePorts(
  options: InitOptions,
  isRoot: boolean,
): Promise<{ overrides: Partial<Record<ServicePortKey, number>>; chosen: PortChoice[] }> {
  const env = (key: keyof AccConfig): string | undefined => options.env[envKey(key)];
  const wanted: { key: ServicePortKey; host: string }[] = [];
  // As root the public port is 80: taken, it is the sysadmin's call (boot names the holder).
  if (!isRoot && options.httpPort === undefined)
    wanted.push({ key: "http_port", host: env("listen_address") ?? "0.0.0.0" });
  wanted.push({ key: "server_port", host: "127.0.0.1" });
  if ((env("postgres") ?? "managed") === "managed")
    wanted.push({ key: "postgres_port", host: "127.0.0.1" });
  const defaultOf = (key: ServicePortKey): number => {
    const value = CONFIG_KEYS[key].defaults[isRoot ? 0 : 1];
    if (typeof value !== "number") throw new Error(`no numeric default for ${key}`);
    return value;
  };
  const taken = new Set(wanted.map((w) => defaultOf(w.key)));
  const overrides: Partial<Record<ServicePortKey, number>> = {};
  const chosen: PortChoice[] = [];
  for (const { key, host } of wanted) {
    const fallback = defaultOf(key);
    if (env(key) !== undefined || (await portFree(fallback, host))) continue;
    const port = await firstFreePort(fallback + 1, host, { avoid: taken });
    if (port === undefined) continue; // boot names the holder of the default
    taken.add(port);
    overrides[key] = port;
    chosen.push({ key, default: fallback, port, holder: await describePortHolder(fallback) });
  }
  return { overrides, chosen };
}

/** Whether apt knows a package (after apt-get update). */
async function aptHas(run: Exec, name: string): Promise<boolean> {
  try {
    await run("apt-cache", ["show", name], { timeoutMs: 60_000 });
    return true;
  } catch (error) {
    if (error instanceof ExecError) return false;
    throw error;
  }
}

/** Sets a key in acc.toml, keeping every other line (and comment) as it is. */
export function setConfigKey(text: string, key: string, literal: string): string {
  const line = `${key} = ${literal}`;
  const re = new RegExp(`^#?\\s*${key}\\s*=.*$`, "m");
  return re.test(text) ? text.replace(re, line) : `${text.trimEnd()}\n${line}\n`;
}

/** Creates the home and its config; installs missing Debian packages when allowed. Idempotent. */
export async function initHome(options: InitOptions): Promise<InitResult> {
  const run = options.exec ?? exec;
  const isRoot = isRootUser();
  const installed: string[] = [];
  const missing: string[] = [];
  for (const need of REQUIRED_PACKAGES) {
    if (!(await findBinary(need.paths))) missing.push(need.package);
  }
  try {
    await findPostgresBin(run);
  } catch (error) {
    if (!(error instanceof AccError)) throw error;
    missing.push("postgresql");
  }
  if (missing.length > 0) {
    const command = `apt-get install -y ${missing.join(" ")}`;
    if (!options.install || !isRoot) {
      throw new AccError("ACC_ENV", `missing Debian packages: ${missing.join(", ")}`, {
        hint: isRoot
          ? `run ${command}, or acc init without --no-install`
          : `run as root: ${command}`,
      });
    }
    const aptEnv = { ...options.env, DEBIAN_FRONTEND: "noninteractive" };
    await run("apt-get", ["update"], { timeoutMs: 10 * 60_000, env: aptEnv });
    // Debian 12 has nginx-light; later releases may ship only nginx.
    if (missing.includes("nginx-light") && !(await aptHas(run, "nginx-light"))) {
      missing.splice(missing.indexOf("nginx-light"), 1, "nginx");
    }
    await run("apt-get", ["install", "-y", "--no-install-recommends", ...missing], {
      timeoutMs: 20 * 60_000,
      env: aptEnv,
    });
    installed.push(...missing);
  }

  const paths = homePaths(options.home);
  await mkdir(paths.home, { recursive: true, mode: 0o711 });

  const existing = await readFileIfExists(paths.config);
  const overrides: Partial<Record<keyof AccConfig, string | number>> = {};
  if (options.domain !== undefined) overrides.domain = options.domain;
  if (options.httpPort !== undefined) overrides.http_port = options.httpPort;
  const ports =
    existing === undefined ? await choosePorts(options, isRoot) : { overrides: {}, chosen: [] };
  let text = existing ?? renderConfigFile({ ...overrides, ...ports.overrides }, isRoot);
  if (existing !== undefined) {
    for (const [key, value] of Object.entries(overrides)) {
      text = setConfigKey(
        text,
        key,
        typeof value === "number" ? String(value) : JSON.stringify(value),
      );
    }
  }
  if (text !== existing) await writeFileAtomic(paths.config, text, { mode: 0o600 });
  await restrictHome(paths);
  return {
    home: paths.home,
    config: paths.config,
    created: existing === undefined,
    installed,
    ports: ports.chosen,
  };
}

export interface BootResult {
  supervisord: "started" | "already running";
  nginx: "running";
  /** Processes of this home its supervisord had left running (it died), stopped before the start. */
  orphans: HomeProcessSummary[];
  /** Instances the store said were up but whose process is gone (after a reboot). */
  reset: string[];
  migration: MigrationReport;
  /** Ports of stopped instances that another program holds (acc-ports keeps trying). */
  squatted: number[];
  /** Whether instances run in their own cgroups, and why not. */
  cgroups: { enabled: boolean; reason?: string };
}

/** Waits until acc server answers its own health check. */
async function waitServerUp(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probeHealth(port, "/healthz", 1000))) {
    if (Date.now() > deadline) {
      throw new AccError(
        "ACC_FAILED",
        `acc server did not answer on 127.0.0.1:${port} within ${timeoutMs} ms`,
        {
          hint: "see HOME/supervisor/logs/acc-server.log; is server_port free?",
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** acc's programs under its supervisord. */
function servicePrograms(ctx: AccContext): ServiceProgram[] {
  return [
    portKeeperProgram({
      script: path.join(ctx.accRoot, "libexec", "acc-ports"),
      socketPath: ctx.paths.portsSocket,
      statePath: ctx.paths.portsState,
      logFile: path.join(childLogDir(ctx.paths), "acc-ports.log"),
    }),
    {
      name: "acc-nginx",
      command: ctx.proxy.command(),
      logFile: path.join(ctx.paths.nginxLogs, "nginx.out.log"),
      stopSignal: "QUIT",
      stopTimeoutSec: 10,
    },
    {
      name: "acc-server",
      command: [
        process.execPath,
        path.join(ctx.accRoot, "dist/acc.mjs"),
        "--home",
        ctx.home,
        "server",
      ],
      logFile: path.join(childLogDir(ctx.paths), "acc-server.log"),
      stopSignal: "TERM",
      stopTimeoutSec: 15,
    },
    {
      // Only exits: starts then cost supervisord nothing more, and stops are told apart by state.
      name: "acc-exits",
      command: [
        process.execPath,
        path.join(ctx.accRoot, "dist/acc.mjs"),
        "--home",
        ctx.home,
        "exit-listener",
        "--log",
        path.join(childLogDir(ctx.paths), "acc-exits.log"),
      ],
      logFile: path.join(childLogDir(ctx.paths), "acc-exits.log"),
      events: ["PROCESS_STATE_EXITED"],
      stopSignal: "TERM",
      stopTimeoutSec: 10,
    },
  ];
}

/**
 * Creates acc's service users, sets the home's modes, writes nginx's and supervisord's main
 * config files and checks nginx's; idempotent. A home of an older acc, whose one service user
 * ran both nginx and Postgres, moves to nginx_user and postgres_user here: its cluster changes
 * owner while stopped (a running one is stopped for that and started again).
 */
export async function writeServiceConfigs(ctx: AccContext): Promise<void> {
  await ensureServiceUsers(ctx);
  await restrictHome(ctx.paths);
  await ctx.proxy.writeMainConfig();
  await ctx.proxy.test();
  const programs = servicePrograms(ctx);
  let restart: string | undefined;
  if (ctx.config.postgres === "managed") {
    // acc's own cluster: created once (initdb as postgres_user), its config rewritten each time.
    const managed = await managedPostgres(ctx);
    const program = managed.serviceProgram(path.join(childLogDir(ctx.paths), "acc-postgres.log"));
    if ((await managed.ownedByAnotherUser()) && (await ctx.processes.isRunning())) {
      ctx.progress.step(`stopping Postgres to give its files to ${ctx.config.postgres_user}`);
      await ctx.processes.stopService(program.name);
      restart = program.name;
    }
    await managed.init();
    programs.push(program);
  }
  await ctx.processes.writeMainConfig(programs);
  if (restart !== undefined) {
    // Loaded as now written (its new user), then started.
    await ctx.processes.updateServices();
    await ctx.processes.startService(restart);
  }
}

/** On a booted home: supervisord and nginx load what writeServiceConfigs wrote. */
export async function reloadServices(ctx: AccContext): Promise<void> {
  // An upgrade or a config change: new service programs, changed commands, a new nginx.conf.
  await ctx.processes.updateServices();
  await ctx.proxy.reload();
}

/** The error of a start tried while acc's supervisord was not running (see the supervisord client). */
const NOT_BOOTED_RE = /^acc's supervisord is not running\b/;

/** The ports acc's own services bind: all free before a boot starts them. */
function servicePorts(ctx: AccContext): ServicePort[] {
  const ports: ServicePort[] = [
    {
      key: "http_port",
      port: ctx.config.http_port,
      host: ctx.config.listen_address.replace(/^\[|\]$/g, ""),
    },
    { key: "server_port", port: ctx.config.server_port, host: "127.0.0.1" },
  ];
  if (ctx.config.postgres === "managed")
    ports.push({ key: "postgres_port", port: ctx.config.postgres_port, host: "127.0.0.1" });
  return ports;
}

/**
 * Starts acc's supervisord and nginx; idempotent. When supervisord is not running but processes
 * of this home are (it was killed, and they went on as orphans), they are stopped first, each
 * the way it stops cleanly (see stopHomeProcesses); the instances among them are then recorded
 * stopped, and wake on their next request.
 */
export async function boot(ctx: AccContext): Promise<BootResult> {
  const wasRunning = await ctx.processes.isRunning();
  let orphans: HomeProcess[] = [];
  if (!wasRunning) {
    orphans = await findHomeProcesses(ctx);
    if (orphans.length > 0) {
      ctx.progress.step(
        `stopping what acc's supervisord left running: ${describeHomeProcesses(orphans)}`,
      );
      await stopHomeProcesses(ctx, orphans);
    }
    await checkServicePortsFree(servicePorts(ctx));
  }
  await writeServiceConfigs(ctx);
  await probeSandbox(ctx);
  const cgroups = await probeCgroups(ctx, { keep: wasRunning });
  // Before any instance can start: instances of an older acc move to today's layout.
  const migration = await migrateInstances(ctx);
  await ctx.processes.start();
  if (wasRunning) await reloadServices(ctx);
  await ctx.proxy.waitRunning(15_000);
  await waitServerUp(ctx.config.server_port, 15_000);
  if (ctx.config.postgres === "managed") await (await pgAdmin(ctx)).waitReady(30_000);
  const reset: string[] = [];
  if (!wasRunning) {
    // supervisord was down, so no instance can be running: record it, they wake on demand.
    // A start the orphaned waker tried meanwhile failed only because supervisord was gone: such
    // an instance is not kept failed (which would refuse its requests for a while).
    const orphaned = new Set(orphans.map((p) => p.instance));
    for (const instance of await ctx.store.listInstances()) {
      if (
        instance.state === "running" ||
        instance.state === "starting" ||
        instance.state === "stopping" ||
        (instance.state === "failed" && NOT_BOOTED_RE.test(instance.lastError ?? ""))
      ) {
        await ctx.store.updateInstance(
          instance.name,
          { state: "stopped", operation: null },
          ctx.now().toISOString(),
        );
        await ctx.store.addEvent(
          {
            instance: instance.name,
            action: "stop",
            cause: "boot",
            outcome: "ok",
            durationMs: null,
            message: orphaned.has(instance.name)
              ? `was ${instance.state}; its processes outlived acc's supervisord and were stopped`
              : `was ${instance.state} before acc's supervisord stopped`,
          },
          ctx.now().toISOString(),
        );
        reset.push(instance.name);
      }
    }
  }
  const squatted = await holdPortsWhenUp(ctx);
  return {
    supervisord: wasRunning ? "already running" : "started",
    nginx: "running",
    orphans: orphans.map(summarizeHomeProcess),
    reset,
    migration,
    squatted,
    cgroups: { enabled: cgroups.enabled, ...(cgroups.reason ? { reason: cgroups.reason } : {}) },
  };
}

/** Holds the instances' ports, once acc-ports answers (it just started). */
async function holdPortsWhenUp(ctx: AccContext): Promise<number[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await holdPorts(ctx, await ctx.store.listInstances());
    } catch (error) {
      if (!isAccError(error, "ACC_NOT_BOOTED") || Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface ShutdownResult {
  stopped: string[];
  wasRunning: boolean;
}

/** At most this many instances stop at once in a shutdown: each mostly waits for its app. */
const SHUTDOWN_CONCURRENCY = 8;

/**
 * Stops these instances side by side, at most SHUTDOWN_CONCURRENCY at once, so that N slow
 * stoppers take about one stop timeout, not N. Every stop is tried; the first failure is thrown
 * once all are done.
 */
export async function stopInstances(
  names: readonly string[],
  stopInstance: (name: string) => Promise<unknown>,
): Promise<void> {
  const limit = createSemaphore(SHUTDOWN_CONCURRENCY);
  const results = await Promise.allSettled(
    names.map((name) => limit.run(() => stopInstance(name))),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
}

/** Stops running instances gracefully, then supervisord and everything under it. */
export async function shutdown(
  ctx: AccContext,
  stopInstance: (name: string) => Promise<unknown>,
): Promise<ShutdownResult> {
  if (!(await ctx.processes.isRunning())) return { stopped: [], wasRunning: false };
  const stopped = (await ctx.store.listInstances())
    .filter((i) => i.state === "running" || i.state === "starting" || i.state === "failed")
    .map((i) => i.name);
  await stopInstances(stopped, stopInstance);
  // Nothing of an instance outlives a shutdown: what a stopped one left goes too, with the
  // groups (a start makes them again).
  const cgroups = await instanceCgroups(ctx);
  if (cgroups) {
    for (const name of await cgroups.names()) await cgroups.remove(name);
    await cgroups.removeLayout();
  }
  await ctx.processes.shutdown();
  return { stopped, wasRunning: true };
}

async function versionOf(file: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await exec(file, args, { timeoutMs: 5000 });
    return (stdout + stderr).trim().split("\n")[0] ?? "";
  } catch (error) {
    if (error instanceof ExecError) return "not installed";
    throw error;
  }
}

export interface StatusReport {
  home: string;
  domain: string;
  http_port: number;
  listen_address: string;
  server_port: number;
  instance_ports: string;
  supervisord: "running" | "stopped";
  nginx: "running" | "stopped";
  server: "running" | "stopped";
  postgres: { mode: "managed" | "external"; state: "running" | "stopped"; where: string };
  /** acc-exits, the exit listener that records crashes as they happen. */
  exits: "running" | "stopped";
  /** acc-ports: how many instance ports it holds, and those another program has taken. */
  ports: { state: "running" | "stopped"; held: number; squatted: number[] };
  /** Processes of this home still running while its supervisord is not (it died). */
  orphans: HomeProcessSummary[];
  /** Whether instances run in their own sandbox, and why not. */
  sandbox: { enabled: boolean; reason?: string; isolation: string };
  /** Whether each instance runs in its own cgroup (contained, limits enforced), and why not. */
  cgroups: { enabled: boolean; reason?: string; layout?: string; where?: string };
  instances: Record<string, number>;
  total: number;
  versions: { acc: string; node: string; nginx: string; supervisord: string };
  /** The home's filesystem: what is free for instances' data, logs and backups. */
  disk: { free_bytes: number; total_bytes: number };
  /** tls and, when not off, the certificates that need a look (acme/warnings.json). */
  tls: { mode: "off" | "manual" | "acme"; https_port: number; warnings: Record<string, string> };
}

export async function status(ctx: AccContext): Promise<StatusReport> {
  const supervisorUp = await ctx.processes.isRunning();
  // Without supervisord, what runs is read from pid files and /proc: its orphans, if any.
  const orphans = supervisorUp ? [] : await findHomeProcesses(ctx);
  const orphan = (kind: HomeProcess["kind"]): boolean => orphans.some((p) => p.kind === kind);
  const nginxUp = supervisorUp ? await ctx.proxy.isRunning() : orphan("nginx");
  const serverUp = supervisorUp
    ? await probeHealth(ctx.config.server_port, "/healthz", 1000)
    : orphan("acc server");
  let postgresUp = false;
  try {
    await (await pgAdmin(ctx)).ping();
    postgresUp = true;
  } catch (error) {
    if (!(error instanceof AccError)) throw error;
  }
  // Without it, crashes are only found by the next wake, start or doctor. STARTING: its first
  // second after a boot, when it already listens.
  const exitsState = supervisorUp ? await ctx.processes.serviceState("acc-exits") : null;
  const exitsUp = supervisorUp
    ? exitsState === "RUNNING" || exitsState === "STARTING"
    : orphan("acc");
  let ports: StatusReport["ports"] = { state: "stopped", held: 0, squatted: [] };
  if (supervisorUp || orphan("acc-ports")) {
    try {
      const kept = await ctx.ports.status();
      ports = {
        state: "running",
        held: kept.ports.filter((p) => p.mode === "held").length,
        squatted: kept.ports.filter((p) => p.mode === "squatted").map((p) => p.port),
      };
    } catch (error) {
      if (!isAccError(error, "ACC_NOT_BOOTED")) throw error;
    }
  }
  const sandbox = await sandboxState(ctx);
  const cgroups = await cgroupsState(ctx);
  const counts: Record<string, number> = {};
  const all = await ctx.store.listInstances();
  for (const instance of all) counts[instance.state] = (counts[instance.state] ?? 0) + 1;
  const pkg = JSON.parse(await readFile(path.join(ctx.accRoot, "package.json"), "utf8")) as {
    version: string;
  };
  const nginxVersion = (await versionOf("nginx", ["-v"])).replace(/^nginx version: /, "");
  const fs = await statfs(ctx.home);
  return {
    disk: { free_bytes: fs.bavail * fs.bsize, total_bytes: fs.blocks * fs.bsize },
    home: ctx.home,
    domain: ctx.config.domain,
    http_port: ctx.config.http_port,
    listen_address: ctx.config.listen_address,
    server_port: ctx.config.server_port,
    instance_ports: `${ctx.config.instance_port_min}-${ctx.config.instance_port_max}`,
    supervisord: supervisorUp ? "running" : "stopped",
    nginx: nginxUp ? "running" : "stopped",
    server: serverUp ? "running" : "stopped",
    exits: exitsUp ? "running" : "stopped",
    postgres: {
      mode: ctx.config.postgres,
      state: postgresUp ? "running" : "stopped",
      where:
        ctx.config.postgres === "managed"
          ? `127.0.0.1:${ctx.config.postgres_port}`
          : ctx.config.postgres_admin_url.replace(/\/\/[^@/]*@/, "//"),
    },
    ports,
    orphans: orphans.map(summarizeHomeProcess),
    sandbox: {
      enabled: sandbox.enabled,
      ...(sandbox.reason !== undefined ? { reason: sandbox.reason } : {}),
      isolation: ctx.isRoot
        ? "each instance runs as its own user"
        : "none between instances: acc is not root, so every instance runs as your user",
    },
    cgroups: {
      enabled: cgroups.enabled,
      ...(cgroups.reason !== undefined ? { reason: cgroups.reason } : {}),
      ...(cgroups.layout
        ? {
            layout: cgroups.layout.kind,
            where: cgroups.layout.groups.map((g) => g.dir).join(" "),
          }
        : {}),
    },
    instances: counts,
    total: all.length,
    tls: {
      mode: ctx.config.tls,
      https_port: ctx.config.https_port,
      warnings: ctx.config.tls === "off" ? {} : await certificateWarnings(ctx),
    },
    versions: {
      acc: pkg.version,
      node: process.version,
      nginx: nginxVersion,
      supervisord: await versionOf("supervisord", ["--version"]),
    },
  };
}

/** Gives a folder to a user (as root), for files a service writes. */
export async function giveTo(dir: string, ids: { uid: number; gid: number }): Promise<void> {
  await chown(dir, ids.uid, ids.gid);
}
