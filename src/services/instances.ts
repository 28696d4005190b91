import { chmod, cp, mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { formatDuration, parseDuration } from "../core/duration.js";
import { instanceEnv, instanceUrl, renderEnvFile, renderRunScript } from "../core/instance-env.js";
import { parseParamArgs, resolveParams } from "../core/model-params.js";
import { parseManifest, type ModelManifest } from "../core/model.js";
import { instancePaths } from "../core/paths.js";
import { assertTransition, mayBeAlive, type InstanceState } from "../core/states.js";
import { renderTemplate } from "../core/template.js";
import { validateHostname, validateInstanceName, MAX_NAME_LENGTH } from "../core/validate.js";
import { AccError, isAccError } from "../lib/errors.js";
import { chownTree, ensureDir, ensureDirMode, tailFile, writeFileAtomic } from "../lib/files.js";
import type { InstanceRecord } from "../store/store.js";
import { backupEnv, createBackup, createFinalBackup, openBackup, restoreInto } from "./backups.js";
import type { AccContext } from "./context.js";
import { portAnswers, waitHealthy } from "./health.js";
import { withLease } from "./leases.js";
import type { LoadedModel } from "./models.js";
import { instanceUserName, type UserIds } from "./users.js";
import { generateSecret } from "./secrets.js";
import { pgAdmin } from "./databases.js";
import { instanceDatabaseEnv } from "../drivers/postgres/index.js";
import { instanceDatabaseName } from "../drivers/postgres/render.js";

/** How long a command waits for another operation on the same instance before it says busy. */
const LEASE_WAIT_MS = 5_000;

export interface CreateOptions {
  model: string;
  name?: string;
  hosts: string[];
  params: string[];
  idleTimeout?: string;
  start: boolean;
}

export interface CreateResult {
  instance: InstanceRecord;
  url: string;
  /** Generated secret parameters, shown once. */
  generated: Record<string, string>;
  secretsFile: string;
}

function elapsed(since: number): number {
  return Date.now() - since;
}

async function recordEvent(
  ctx: AccContext,
  instance: string,
  action: string,
  outcome: "ok" | "failed" | "skipped",
  extra: { cause?: string; durationMs?: number; message?: string } = {},
): Promise<void> {
  await ctx.store.addEvent(
    {
      instance,
      action,
      outcome,
      cause: extra.cause ?? null,
      durationMs: extra.durationMs ?? null,
      message: extra.message ?? null,
    },
    ctx.now().toISOString(),
  );
}

async function setState(
  ctx: AccContext,
  instance: InstanceRecord,
  to: InstanceState,
  extra: { operation?: string | null; lastError?: string | null } = {},
): Promise<void> {
  assertTransition(instance.name, instance.state, to);
  await ctx.store.updateInstance(instance.name, { state: to, ...extra }, ctx.now().toISOString());
  instance.state = to;
}

export async function getInstance(ctx: AccContext, name: string): Promise<InstanceRecord> {
  const instance = await ctx.store.getInstance(name);
  if (!instance) {
    throw new AccError("ACC_NOT_FOUND", `no instance named ${JSON.stringify(name)}`, {
      hint: "acc list shows the instances",
    });
  }
  return instance;
}

export function urlOf(ctx: AccContext, instance: InstanceRecord): string {
  return instanceUrl(
    instance.hosts[0] ?? `${instance.name}.${ctx.config.domain}`,
    ctx.config.http_port,
  );
}

function lease<T>(
  ctx: AccContext,
  name: string,
  operation: string,
  fn: () => Promise<T>,
): Promise<T> {
  return withLease(ctx.store, name, operation, fn, {
    waitMs: LEASE_WAIT_MS,
    what: `instance ${name}`,
  });
}

async function defaultName(ctx: AccContext, model: string): Promise<string> {
  const taken = new Set((await ctx.store.listInstances()).map((i) => i.name));
  const base = model.slice(0, MAX_NAME_LENGTH - 6);
  for (let n = 1; ; n++) if (!taken.has(`${base}${n}`)) return `${base}${n}`;
}

/** Folder with the model's code, shared read-only by every instance of this model version. */
/** Where the code of one model version lives, shared by its instances. */
export function codeDirOf(ctx: AccContext, model: string, version: string, hash: string): string {
  return path.join(ctx.paths.code, `${model}-${version}-${hash.slice(0, 12)}`);
}

/**
 * The manifest an instance runs with: the one in its shared code folder, pinned at create,
 * not whatever the model folder holds now (a model edit must not change running instances).
 * Cached per process: a code folder never changes once complete.
 */
export async function instanceManifest(
  ctx: AccContext,
  instance: InstanceRecord,
): Promise<ModelManifest> {
  const dir = codeDirOf(ctx, instance.model, instance.modelVersion, instance.modelHash);
  const cached = ctx.manifests.get(dir);
  if (cached) return cached;
  const file = path.join(dir, "model.toml");
  const manifest = parseManifest(await readFile(file, "utf8"), file);
  ctx.manifests.set(dir, manifest);
  return manifest;
}

async function ensureSharedCode(ctx: AccContext, model: LoadedModel): Promise<string> {
  const dir = codeDirOf(ctx, model.manifest.name, model.manifest.version, model.hash);
  try {
    await stat(path.join(dir, ".acc-complete"));
    return dir;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  // Traversable, not listable: each instance opens its own model's folder (0755 below).
  await ensureDirMode(ctx.paths.code, 0o711);
  // Copy to a temp folder and rename: two creates racing, or a crash, never leave half a copy.
  const temp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await cp(model.dir, temp, {
    recursive: true,
    filter: (src) =>
      !src.split(path.sep).some((part) => part === ".git" || part === "node_modules"),
  });
  try {
    await installDependencies(ctx, model, temp);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
  await makeWorldReadable(temp);
  await writeFileAtomic(path.join(temp, ".acc-complete"), `${model.hash}\n`);
  try {
    await rename(temp, dir);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    if (
      (error as NodeJS.ErrnoException).code !== "ENOTEMPTY" &&
      (error as NodeJS.ErrnoException).code !== "EEXIST"
    )
      throw error;
  }
  return dir;
}

/**
 * A model's npm dependencies, installed once into its shared code folder (not per instance).
 * --ignore-scripts: acc runs this as root, and no package's code may run as root.
 */
async function installDependencies(
  ctx: AccContext,
  model: LoadedModel,
  dir: string,
): Promise<void> {
  let pkg: { dependencies?: Record<string, string> };
  try {
    pkg = JSON.parse(await readFile(path.join(dir, "package.json"), "utf8")) as typeof pkg;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (Object.keys(pkg.dependencies ?? {}).length === 0) return;
  ctx.progress.step(
    `installing ${model.manifest.name} ${model.manifest.version}'s dependencies (once per version)`,
  );
  try {
    await ctx.exec(
      "npm",
      [
        "install",
        "--omit=dev",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
      ],
      { cwd: dir, timeoutMs: 15 * 60_000, env: { ...process.env, npm_config_loglevel: "error" } },
    );
  } catch (error) {
    throw new AccError(
      "ACC_FAILED",
      `installing the dependencies of model ${model.manifest.name} failed`,
      {
        cause: error,
        details: ((error as { stderr?: string }).stderr ?? "")
          .trim()
          .split("\n")
          .slice(-10)
          .join("\n"),
      },
    );
  }
}

async function makeWorldReadable(dir: string): Promise<void> {
  const { readdir } = await import("node:fs/promises");
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await makeWorldReadable(full);
    else if (entry.isFile()) {
      const mode = (await stat(full)).mode;
      await chmod(full, mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

function timeoutOf(ctx: AccContext, manifest: ModelManifest): number {
  return manifest.start_timeout ?? manifest.health.timeout ?? ctx.config.start_timeout;
}

/** Everything a template or [env] value may use. */
function templateVars(
  ctx: AccContext,
  instance: { name: string; port: number; hosts: string[] },
  params: Record<string, string>,
): Record<string, string> {
  const p = instancePaths(ctx.home, instance.name);
  const vars: Record<string, string> = {
    name: instance.name,
    port: String(instance.port),
    host: instance.hosts[0] ?? "",
    url: instanceUrl(instance.hosts[0] ?? "", ctx.config.http_port),
    data_dir: p.data,
    config_dir: p.config,
  };
  for (const [key, value] of Object.entries(params)) vars[`params.${key}`] = value;
  return vars;
}

/** Writes the instance's folder, env file, launcher and rendered templates. Idempotent. */
async function writeInstanceFiles(
  ctx: AccContext,
  instance: { name: string; port: number; hosts: string[] },
  model: LoadedModel,
  params: Record<string, string>,
  codeDir: string,
  ids: UserIds | undefined,
  /** DATABASE_URL and PG* of its database, when it has one. */
  databaseEnv: Record<string, string> = {},
): Promise<void> {
  const p = instancePaths(ctx.home, instance.name);
  await ensureDir(ctx.paths.instances);
  await mkdir(p.root, { recursive: true, mode: 0o700 });
  for (const dir of [p.data, p.config, p.logs]) await mkdir(dir, { recursive: true, mode: 0o700 });
  const vars = templateVars(ctx, instance, params);
  if (databaseEnv.DATABASE_URL !== undefined) vars.database_url = databaseEnv.DATABASE_URL;
  const modelEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(model.manifest.env)) {
    modelEnv[key] = renderTemplate(value, vars, `${model.manifest.name}: env ${key}`);
  }
  const env = instanceEnv({
    name: instance.name,
    port: instance.port,
    url: vars.url ?? "",
    dataDir: p.data,
    configDir: p.config,
    home: p.root,
    path: `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    params,
    modelEnv: { ...modelEnv, ...databaseEnv },
  });
  const owner = ids ? { uid: ids.uid, gid: ids.gid } : {};
  await writeFileAtomic(p.env, renderEnvFile(env), { mode: 0o600, ...owner });
  await writeFileAtomic(
    p.run,
    renderRunScript({ envFile: p.env, codeDir, command: model.manifest.command }),
    { mode: 0o700, ...owner },
  );
  for (const template of model.manifest.templates) {
    const text = await readFile(path.join(model.dir, template.source), "utf8");
    const target = path.join(p.config, template.target);
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    await writeFileAtomic(
      target,
      renderTemplate(text, vars, `${model.manifest.name}: ${template.source}`),
      {
        mode: template.mode ?? 0o600,
        ...owner,
      },
    );
  }
  if (ids) await chownTree(p.root, ids);
  await chmod(p.root, 0o700);
}

async function runSetup(
  ctx: AccContext,
  name: string,
  model: LoadedModel,
  codeDir: string,
  ids: UserIds | undefined,
): Promise<void> {
  const setup = model.manifest.setup;
  if (!setup) return;
  const p = instancePaths(ctx.home, name);
  ctx.progress.step(`running setup: ${setup.command}`);
  const script = renderRunScript({ envFile: p.env, codeDir, command: setup.command });
  try {
    await ctx.exec("/bin/sh", ["-c", script], {
      cwd: codeDir,
      timeoutMs: setup.timeout ?? 300_000,
      env: { PATH: `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin` },
      ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new AccError("ACC_FAILED", `setup of ${name} failed: ${setup.command}`, {
      cause: error,
      details: stderr.trim().split("\n").slice(-20).join("\n"),
    });
  }
}

async function instanceUser(
  ctx: AccContext,
  name: string,
): Promise<{ user?: string; ids?: UserIds }> {
  if (!ctx.isRoot) return {};
  const user = instanceUserName(name);
  const ids = await ctx.users.ensure(user, instancePaths(ctx.home, name).root);
  return { user, ids };
}

export async function createInstance(
  ctx: AccContext,
  options: CreateOptions,
): Promise<CreateResult> {
  // Everything the user typed is checked before anything is written.
  const model = await ctx.models.get(options.model);
  const name =
    options.name === undefined
      ? await defaultName(ctx, model.manifest.name)
      : validateInstanceName(options.name);
  const extraHosts = options.hosts.map(validateHostname);
  const hosts = [...new Set([...extraHosts, `${name}.${ctx.config.domain}`])];
  const resolved = resolveParams(model.manifest, parseParamArgs(options.params), generateSecret);
  const idleTimeout =
    options.idleTimeout === undefined
      ? undefined
      : parseDuration(options.idleTimeout, "idle timeout");
  const publicParams: Record<string, string> = {};
  for (const [key, value] of Object.entries(resolved.values)) {
    if (!resolved.secrets.includes(key)) publicParams[key] = value;
  }
  const generated: Record<string, string> = {};
  for (const key of resolved.generated) generated[key] = resolved.values[key] ?? "";

  return lease(ctx, name, "create", async () => {
    const started = Date.now();
    const instance = await ctx.store.insertInstance(
      {
        name,
        model: model.manifest.name,
        modelVersion: model.manifest.version,
        modelHash: model.hash,
        hosts,
        params: publicParams,
        idleTimeout,
        portRange: { min: ctx.config.instance_port_min, max: ctx.config.instance_port_max },
        database: model.manifest.database === "postgres" ? instanceDatabaseName(name) : null,
      },
      ctx.now().toISOString(),
    );
    let databaseMade = false;
    try {
      ctx.progress.step(`creating ${name} from ${model.manifest.name} ${model.manifest.version}`);
      const { user, ids } = await instanceUser(ctx, name);
      const codeDir = await ensureSharedCode(ctx, model);
      let databaseEnv: Record<string, string> = {};
      if (model.manifest.database === "postgres") {
        ctx.progress.step("creating its Postgres database and role");
        // createInstanceDatabase removes what it made when it fails; after it, an undo drops it.
        databaseEnv = instanceDatabaseEnv(await (await pgAdmin(ctx)).createInstanceDatabase(name));
        databaseMade = true;
      }
      await writeInstanceFiles(ctx, instance, model, resolved.values, codeDir, ids, databaseEnv);
      const p = instancePaths(ctx.home, name);
      await ctx.processes.writeProgram({
        name,
        // env -i: the app gets its env file and nothing of whoever started supervisord.
        command: ["/usr/bin/env", "-i", "/bin/sh", p.run],
        directory: codeDir,
        ...(user ? { user } : {}),
        logFile: p.appLog,
        stopTimeoutSec: Math.ceil((model.manifest.stop_timeout ?? ctx.config.stop_timeout) / 1000),
      });
      ctx.progress.step("configuring nginx");
      await ctx.proxy.applySite({ name, port: instance.port, hosts });
      await runSetup(ctx, name, model, codeDir, ids);
      await setState(ctx, instance, "stopped", { operation: null });
      await recordEvent(ctx, name, "create", "ok", { durationMs: elapsed(started), cause: "cli" });
    } catch (error) {
      await removeEverywhere(ctx, name, { dropDatabase: databaseMade }).catch(
        (undoError: unknown) => {
          const what = (e: unknown): string => (e instanceof Error ? e.message : String(e));
          throw new AccError(
            "ACC_FAILED",
            `create of ${name} failed (${what(error)}) and could not be undone (${what(undoError)})`,
            { cause: error, hint: "acc doctor --repair finishes the clean-up" },
          );
        },
      );
      await recordEvent(ctx, name, "create", "failed", {
        durationMs: elapsed(started),
        message: error instanceof Error ? error.message : String(error),
      });
      throw error;
    }
    if (options.start) await startLocked(ctx, instance, "create");
    return {
      instance: (await ctx.store.getInstance(name)) ?? instance,
      url: urlOf(ctx, instance),
      generated,
      secretsFile: instancePaths(ctx.home, name).env,
    };
  });
}

/**
 * Removes everything of an instance: program, nginx files, folder, system user, store row.
 * Each step is idempotent, so it undoes a half-made create and finishes a half-done destroy.
 */
export async function removeEverywhere(
  ctx: AccContext,
  name: string,
  options: { dropDatabase?: boolean } = {},
): Promise<void> {
  const row = await ctx.store.getInstance(name);
  if (options.dropDatabase ?? row?.database != null) {
    await (await pgAdmin(ctx)).dropInstanceDatabase(name);
  }
  await ctx.processes.removeProgram(name);
  await ctx.proxy.removeSite(name);
  await rm(instancePaths(ctx.home, name).root, { recursive: true, force: true });
  if (ctx.isRoot) await ctx.users.remove(instanceUserName(name));
  await ctx.store.deleteInstance(name);
}

async function lastLogLines(ctx: AccContext, name: string, count: number): Promise<string> {
  return (await tailFile(instancePaths(ctx.home, name).appLog, count)).text;
}

/** Starts an instance whose lease the caller holds, and waits for its health check. */
export async function startLocked(
  ctx: AccContext,
  instance: InstanceRecord,
  cause: string,
  /** What caused it, for the event (a wake: method, host, path, user agent). */
  detail?: string,
): Promise<void> {
  const started = Date.now();
  const manifest = await instanceManifest(ctx, instance);
  await setState(ctx, instance, "starting", { operation: "start" });
  ctx.progress.step(`starting ${instance.name}`);
  let reason: string;
  try {
    // Something else on the port would answer the health check for an app that could not bind.
    if (
      (await portAnswers(instance.port)) &&
      (await ctx.processes.programState(instance.name))?.state !== "RUNNING"
    ) {
      throw new AccError(
        "ACC_START_FAILED",
        `port ${instance.port} is already in use by another program`,
        {
          hint: "find it with: ss -ltnp",
        },
      );
    }
    await ctx.processes.startProgram(instance.name);
    const result = await waitHealthy({
      port: instance.port,
      path: manifest.health.path,
      timeoutMs: timeoutOf(ctx, manifest),
      giveUp: async () => {
        const state = await ctx.processes.programState(instance.name);
        if (state && state.state !== "RUNNING" && state.state !== "STARTING") {
          return state.state === "EXITED"
            ? `the process exited with status ${state.exitStatus}`
            : `the process is ${state.state}${state.spawnError ? `: ${state.spawnError}` : ""}`;
        }
        return undefined;
      },
    });
    if (result.ok) {
      await setState(ctx, instance, "running", { operation: null, lastError: null });
      await recordEvent(ctx, instance.name, "start", "ok", {
        cause,
        durationMs: elapsed(started),
        ...(detail !== undefined ? { message: detail } : {}),
      });
      return;
    }
    reason = result.reason;
  } catch (error) {
    if (!isAccError(error)) throw error;
    reason = error.message;
  }
  // Never leave a half-running instance: stop what may be left, then say failed.
  await ctx.processes.stopProgram(instance.name);
  await setState(ctx, instance, "failed", { operation: null, lastError: reason });
  await recordEvent(ctx, instance.name, "start", "failed", {
    cause,
    durationMs: elapsed(started),
    message: detail !== undefined ? `${reason} (${detail})` : reason,
  });
  throw new AccError("ACC_START_FAILED", `${instance.name} failed to start: ${reason}`, {
    details: await lastLogLines(ctx, instance.name, 20),
    hint: `acc logs ${instance.name} shows the whole log`,
  });
}

export async function stopLocked(
  ctx: AccContext,
  instance: InstanceRecord,
  cause: string,
  message?: string,
): Promise<void> {
  const started = Date.now();
  await setState(ctx, instance, "stopping", { operation: "stop" });
  ctx.progress.step(`stopping ${instance.name}`);
  await ctx.processes.stopProgram(instance.name);
  await setState(ctx, instance, "stopped", { operation: null });
  await recordEvent(ctx, instance.name, "stop", "ok", {
    cause,
    durationMs: elapsed(started),
    ...(message !== undefined ? { message } : {}),
  });
}

export async function startInstance(
  ctx: AccContext,
  name: string,
  cause = "cli",
): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  return lease(ctx, name, "start", async () => {
    const instance = await getInstance(ctx, name);
    if (instance.state === "suspended") {
      throw new AccError("ACC_STATE", `instance ${name} is suspended`, {
        hint: `acc resume ${name}`,
      });
    }
    if (
      instance.state === "running" &&
      (await ctx.processes.programState(name))?.state === "RUNNING"
    ) {
      return instance;
    }
    await startLocked(ctx, instance, cause);
    return instance;
  });
}

export interface StopOptions {
  cause?: string;
  message?: string;
  /** Checked again under the lease (a wake may have come in meanwhile): stop only when true. */
  onlyIf?: (instance: InstanceRecord) => boolean;
}

/** Stops an instance; returns it, and whether this call stopped it. */
export async function stopInstance(
  ctx: AccContext,
  name: string,
  options: StopOptions = {},
): Promise<InstanceRecord & { stopped?: boolean }> {
  await getInstance(ctx, name);
  return lease(ctx, name, "stop", async () => {
    const instance = await getInstance(ctx, name);
    if (instance.state === "stopped" || instance.state === "suspended") return instance;
    if (options.onlyIf && !options.onlyIf(instance)) return instance;
    await stopLocked(ctx, instance, options.cause ?? "cli", options.message);
    return { ...instance, stopped: true };
  });
}

/** Stops an instance if needed and marks it suspended: requests get a 503 page, nothing wakes it. */
export async function suspendInstance(ctx: AccContext, name: string): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  return lease(ctx, name, "suspend", async () => {
    const instance = await getInstance(ctx, name);
    if (instance.state === "suspended") return instance;
    if (mayBeAlive(instance.state)) await stopLocked(ctx, instance, "suspend");
    await setState(ctx, instance, "suspended", { operation: null });
    await recordEvent(ctx, name, "suspend", "ok", { cause: "cli" });
    return instance;
  });
}

export async function resumeInstance(ctx: AccContext, name: string): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  return lease(ctx, name, "resume", async () => {
    const instance = await getInstance(ctx, name);
    if (instance.state !== "suspended") {
      throw new AccError("ACC_STATE", `instance ${name} is ${instance.state}, not suspended`);
    }
    await setState(ctx, instance, "stopped", { operation: null });
    await recordEvent(ctx, name, "resume", "ok", {
      cause: "cli",
      message: "wakes on its next request",
    });
    return instance;
  });
}

/** Sets the instance's own idle timeout: ms, null for never, undefined to inherit again. */
export async function setIdleTimeout(
  ctx: AccContext,
  name: string,
  idleTimeout: number | null | undefined,
): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  return lease(ctx, name, "set", async () => {
    await ctx.store.updateInstance(name, { idleTimeout }, ctx.now().toISOString());
    await recordEvent(ctx, name, "set", "ok", {
      cause: "cli",
      message: `idle-timeout=${idleTimeout === undefined ? "default" : formatDuration(idleTimeout)}`,
    });
    return getInstance(ctx, name);
  });
}

/** The idle timeout in force: the instance's own, else its model's, else the config's; null is never. */
export async function effectiveIdleTimeout(
  ctx: AccContext,
  instance: InstanceRecord,
): Promise<number | null> {
  if (instance.idleTimeout !== undefined) return instance.idleTimeout;
  const manifest = await instanceManifest(ctx, instance);
  return manifest.idle_timeout !== undefined ? manifest.idle_timeout : ctx.config.idle_timeout;
}

export async function restartInstance(
  ctx: AccContext,
  name: string,
  cause = "cli",
): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  return lease(ctx, name, "restart", async () => {
    const instance = await getInstance(ctx, name);
    if (instance.state === "suspended") {
      throw new AccError("ACC_STATE", `instance ${name} is suspended`, {
        hint: `acc resume ${name}`,
      });
    }
    if (instance.state !== "stopped") await stopLocked(ctx, instance, cause);
    await startLocked(ctx, instance, cause);
    return instance;
  });
}

export interface DestroyResult {
  name: string;
  backup: string | null;
}

export async function destroyInstance(
  ctx: AccContext,
  name: string,
  options: { backup: boolean },
): Promise<DestroyResult> {
  await getInstance(ctx, name);
  return lease(ctx, name, "destroy", async () => {
    const started = Date.now();
    const instance = await getInstance(ctx, name);
    // Postgres down: nothing is removed (the final backup or the drop would fail half-way).
    if (instance.database !== null) await (await pgAdmin(ctx)).ping();
    // The final backup comes first: if it fails, nothing is destroyed.
    let backup: string | null = null;
    if (options.backup) {
      ctx.progress.step(`backing up ${name}`);
      backup = await createFinalBackup(ctx, instance);
    }
    if (mayBeAlive(instance.state)) await stopLocked(ctx, instance, "destroy");
    await setState(ctx, instance, "destroying", { operation: "destroy" });
    ctx.progress.step(`removing ${name}`);
    await removeEverywhere(ctx, name);
    await recordEvent(ctx, name, "destroy", "ok", {
      cause: "cli",
      durationMs: elapsed(started),
      message: backup ? `final backup in ${backup}` : "no final backup (--no-backup)",
    });
    return { name, backup };
  });
}

/** Names a setting of `acc create --idle-timeout` would accept, for help texts. */
export const IDLE_TIMEOUT_EXAMPLES = "30s, 15m, 2h or never";

/** A backup of an instance, awake or asleep, without waking it. */
export async function backupInstance(ctx: AccContext, name: string): Promise<string> {
  await getInstance(ctx, name);
  return lease(ctx, name, "backup", async () =>
    createBackup(ctx, await getInstance(ctx, name), "acc backup"),
  );
}

/**
 * Restores a backup into an existing instance: stops it, puts the backup's files and database
 * in place, and starts it again if it was running. A damaged backup is refused before anything.
 */
export async function restoreInstance(
  ctx: AccContext,
  name: string,
  backupId: string,
): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  const backup = await openBackup(ctx, backupId, name);
  return lease(ctx, name, "restore", async () => {
    const started = Date.now();
    const instance = await getInstance(ctx, name);
    const wasRunning = instance.state === "running";
    if (mayBeAlive(instance.state)) await stopLocked(ctx, instance, "restore");
    const { ids } = await instanceUser(ctx, name);
    await restoreInto(ctx, instance, backup, ids);
    await recordEvent(ctx, name, "restore", "ok", {
      cause: "cli",
      durationMs: elapsed(started),
      message: backup.dir,
    });
    if (wasRunning) await startLocked(ctx, instance, "restore");
    return getInstance(ctx, name);
  });
}

/** Creates a new instance from a backup: same model, parameters and secrets, its data and database. */
export async function restoreAsNew(
  ctx: AccContext,
  newName: string,
  backupId: string,
): Promise<CreateResult> {
  validateInstanceName(newName);
  const backup = await openBackup(ctx, backupId);
  const env = await backupEnv(ctx, backup.dir);
  const model = await ctx.models.get(backup.manifest.model);
  const params = Object.keys(model.manifest.params).flatMap((key) => {
    const value = backup.manifest.params[key] ?? env[`PARAM_${key.toUpperCase()}`];
    return value === undefined || value === "" ? [] : [`${key}=${value}`];
  });
  const created = await createInstance(ctx, {
    model: model.manifest.name,
    name: newName,
    hosts: [],
    params,
    start: false,
  });
  const restored = await restoreInstance(
    ctx,
    newName,
    path.relative(ctx.paths.backups, backup.dir),
  );
  await startInstance(ctx, newName, "restore");
  return { ...created, instance: (await ctx.store.getInstance(newName)) ?? restored };
}
