import { rm } from "node:fs/promises";
import { formatDuration, parseDuration } from "../core/duration.js";
import { parseParamArgs, publicParamsOf, resolveParams } from "../core/model-params.js";
import type { ModelManifest } from "../core/model.js";
import { certificateStatePath, instancePaths } from "../core/paths.js";
import { escapeUntrusted } from "../core/untrusted-text.js";
import { assertTransition, mayBeAlive, type InstanceState } from "../core/states.js";
import {
  reservedInstanceName,
  validateInstanceHost,
  validateNewInstanceName,
  MAX_NAME_LENGTH,
} from "../core/validate.js";
import { AccError, isAccError } from "../lib/errors.js";
import { tailFile } from "../lib/files.js";
import { trace } from "../lib/trace.js";
import type { InstanceRecord } from "../store/store.js";
import { createFinalBackup } from "./backups.js";
import { settleRestore } from "./restores.js";
import { settleUpgrade } from "./upgrade-journal.js";
import type { LoadedModel } from "./models.js";
import { checkBindAddresses } from "./bind-check.js";
import { assertMayStart, handleDeadRunning } from "./crashes.js";
import { readListeners } from "./listeners.js";
import type { AccContext } from "./context.js";
import { waitHealthy } from "./health.js";
import { withLease } from "./leases.js";
import { instanceUserName, type UserIds } from "./users.js";
import { generateSecret } from "./secrets.js";
import { publicUrl } from "./tls-url.js";
import { runModelStep, writeInstanceFiles, writeInstanceProgram } from "./instance-files.js";
import { ensureSharedCode, instanceManifest, siteOf } from "./model-code.js";
import { checkPortOwner, holdPort, portIntruder, releasePort } from "./ports.js";
import { pgAdmin } from "./databases.js";
import { instanceDatabaseEnv } from "../drivers/postgres/index.js";
import { instanceDatabaseName } from "../drivers/postgres/render.js";
import { parseLimitArgs } from "../core/limits.js";
import { killCgroup, prepareCgroup, removeCgroup, stopProcesses } from "./cgroups.js";

/** How long a command waits for another operation on the same instance before it says busy. */
const LEASE_WAIT_MS = 5_000;

export interface CreateOptions {
  model: string;
  name?: string;
  hosts: string[];
  params: string[];
  idleTimeout?: string;
  /** `memory=512M` style limits (acc create --limit). */
  limits?: string[];
  start: boolean;
  /** The model already loaded (restore --as-new: a version kept in the home), not by name. */
  loaded?: LoadedModel;
}

export interface CreateResult {
  instance: InstanceRecord;
  url: string;
  /** Generated secret parameters, shown once. */
  generated: Record<string, string>;
  secretsFile: string;
}

export function elapsed(since: number): number {
  return Date.now() - since;
}

/** The cause of a change made with this context: its caller (see AccContext.cause). */
export function causeOf(ctx: Pick<AccContext, "cause">): string {
  return ctx.cause ?? "cli";
}

export async function recordEvent(
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

export function urlOf(ctx: AccContext, instance: Pick<InstanceRecord, "name" | "hosts">): string {
  return publicUrl(
    ctx,
    instance.name,
    instance.hosts[0] ?? `${instance.name}.${ctx.config.domain}`,
  );
}

export function lease<T>(
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
  taken.add(reservedInstanceName(ctx.config.admin_host));
  const base = model.slice(0, MAX_NAME_LENGTH - 6);
  for (let n = 1; ; n++) if (!taken.has(`${base}${n}`)) return `${base}${n}`;
}

/** The stop timeout in force: the model's, else acc.toml's. */
async function stopTimeoutOf(ctx: AccContext, instance: InstanceRecord): Promise<number> {
  const manifest = await instanceManifest(ctx, instance);
  // supervisord counts in whole seconds (stopwaitsecs), so does the wait.
  return Math.ceil((manifest.stop_timeout ?? ctx.config.stop_timeout) / 1000) * 1000;
}

function timeoutOf(ctx: AccContext, manifest: ModelManifest): number {
  return manifest.start_timeout ?? manifest.health.timeout ?? ctx.config.start_timeout;
}

/** As root, the instance's own system user, made when missing. */
export async function ensureInstanceUser(
  ctx: AccContext,
  name: string,
): Promise<UserIds | undefined> {
  if (!ctx.isRoot) return undefined;
  return ctx.users.ensure(instanceUserName(name), instancePaths(ctx.home, name).root);
}

export async function createInstance(
  ctx: AccContext,
  options: CreateOptions,
): Promise<CreateResult> {
  // Everything the user typed is checked before anything is written.
  const model = options.loaded ?? (await ctx.models.get(options.model));
  const name =
    options.name === undefined
      ? await defaultName(ctx, model.manifest.name)
      : validateNewInstanceName(options.name, ctx.config.admin_host);
  const extraHosts = options.hosts.map((host) =>
    validateInstanceHost(host, {
      name,
      domain: ctx.config.domain,
      adminHost: ctx.config.admin_host,
    }),
  );
  const hosts = [...new Set([...extraHosts, `${name}.${ctx.config.domain}`])];
  const resolved = resolveParams(model.manifest, parseParamArgs(options.params), generateSecret);
  const idleTimeout =
    options.idleTimeout === undefined
      ? undefined
      : parseDuration(options.idleTimeout, "idle timeout");
  const limits = parseLimitArgs(options.limits ?? [], "--limit");
  const publicParams = publicParamsOf(resolved);
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
        limits,
      },
      ctx.now().toISOString(),
    );
    let databaseMade = false;
    try {
      ctx.progress.step(`creating ${name} from ${model.manifest.name} ${model.manifest.version}`);
      const ids = await ensureInstanceUser(ctx, name);
      const codeDir = await ensureSharedCode(ctx, model);
      let databaseEnv: Record<string, string> = {};
      if (model.manifest.database === "postgres") {
        ctx.progress.step("creating its Postgres database and role");
        // createInstanceDatabase removes what it made when it fails; after it, an undo drops it.
        databaseEnv = instanceDatabaseEnv(await (await pgAdmin(ctx)).createInstanceDatabase(name));
        databaseMade = true;
      }
      await writeInstanceFiles(ctx, instance, model, resolved.values, codeDir, ids, databaseEnv);
      await writeInstanceProgram(ctx, name, model.manifest, codeDir);
      ctx.progress.step("configuring nginx");
      await ctx.proxy.applySite(siteOf(ctx, { name, port: instance.port, hosts }, model.manifest));
      if (model.manifest.setup) {
        // The setup step runs in the instance's cgroup too, and leaves nothing running there.
        await prepareCgroup(ctx, instance, model.manifest);
        await runModelStep(ctx, name, model, "setup");
        await killCgroup(ctx, name);
      }
      await setState(ctx, instance, "stopped", { operation: null });
      await holdPort(ctx, instance.port);
      await recordEvent(ctx, name, "create", "ok", {
        durationMs: elapsed(started),
        cause: causeOf(ctx),
      });
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
  // Nothing of it may outlive it, detached children included.
  await removeCgroup(ctx, name);
  await ctx.proxy.removeSite(name);
  // Its certificate went with its nginx files; what acc knew of its renewal goes too.
  await rm(certificateStatePath(ctx.paths, name), { force: true });
  if (row) await releasePort(ctx, row.port);
  // The user goes first, and every process of it: then nothing can swap an entry of data/ for
  // a link while root removes the folder.
  if (ctx.isRoot) await ctx.users.remove(instanceUserName(name));
  const p = instancePaths(ctx.home, name);
  await rm(p.root, { recursive: true, force: true });
  await rm(p.logs, { recursive: true, force: true });
  await ctx.store.deleteInstance(name);
}

/** The end of the app's log, escaped: it is shown on the sysadmin's terminal. */
export async function lastLogLines(ctx: AccContext, name: string, count: number): Promise<string> {
  const { text } = await tailFile(instancePaths(ctx.home, name).appLog, count);
  return escapeUntrusted(text, { keepLines: true });
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
  // A restore killed half-way is finished or undone first: never started on half of one.
  const settled = await settleRestore(ctx, instance.name);
  if (settled !== undefined) {
    await recordEvent(
      ctx,
      instance.name,
      "restore",
      settled.outcome === "finished" ? "ok" : "failed",
      {
        cause,
        message: `an interrupted restore was ${settled.outcome} before the start`,
      },
    );
  }
  // So is an upgrade killed half-way: rolled back to its old version before anything starts.
  if ((await settleUpgrade(ctx, instance.name)) !== undefined) {
    Object.assign(instance, await getInstance(ctx, instance.name));
  }
  const manifest = await instanceManifest(ctx, instance);
  await assertMayStart(ctx, instance, cause);
  trace?.mark(instance.name, "checked");
  await setState(ctx, instance, "starting", { operation: "start" });
  trace?.mark(instance.name, "state-starting");
  ctx.progress.step(`starting ${instance.name}`);
  let reason: string;
  try {
    await prepareCgroup(ctx, instance, manifest);
    trace?.mark(instance.name, "cgroup");
    await ctx.processes.startProgram(instance.name);
    trace?.mark(instance.name, "rpc-done");
    const result = await waitHealthy({
      port: instance.port,
      path: manifest.health.path,
      ...(manifest.health.statuses ? { statuses: manifest.health.statuses } : {}),
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
    trace?.mark(instance.name, "healthy");
    if (result.ok) {
      // Each throws ACC_START_FAILED (handled below): another user's program answered on its
      // port, or it listens beyond loopback and may not.
      const listening = await readListeners();
      await checkPortOwner(ctx, instance, manifest, listening);
      await checkBindAddresses(ctx, instance, manifest, listening);
      trace?.mark(instance.name, "owner-checked");
      await setState(ctx, instance, "running", { operation: null, lastError: null });
      trace?.mark(instance.name, "state-running");
      await recordEvent(ctx, instance.name, "start", "ok", {
        cause,
        durationMs: elapsed(started),
        ...(detail !== undefined ? { message: detail } : {}),
      });
      trace?.mark(instance.name, "event");
      return;
    }
    reason = result.reason;
    // An app that could not bind its port: say who has it.
    const intruder = await portIntruder(ctx, instance);
    if (intruder !== undefined) reason = `${reason}; ${intruder}`;
  } catch (error) {
    if (!isAccError(error)) throw error;
    reason = error.message;
  }
  // Never leave a half-running instance: stop what may be left, then say failed.
  await stopProcesses(ctx, instance.name);
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
  const { killed } = await stopProcesses(ctx, instance.name);
  await setState(ctx, instance, "stopped", { operation: null });
  await holdPort(ctx, instance.port);
  const forced = killed
    ? `SIGKILL after ${formatDuration(await stopTimeoutOf(ctx, instance))}`
    : undefined;
  const said = [message, forced].filter((part) => part !== undefined).join("; ");
  await recordEvent(ctx, instance.name, "stop", "ok", {
    cause,
    durationMs: elapsed(started),
    ...(said !== "" ? { message: said } : {}),
  });
}

export async function startInstance(
  ctx: AccContext,
  name: string,
  cause = causeOf(ctx),
): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  return lease(ctx, name, "start", async () => {
    const instance = await getInstance(ctx, name);
    if (instance.state === "suspended") {
      throw new AccError("ACC_STATE", `instance ${name} is suspended`, {
        hint: `acc resume ${name}`,
      });
    }
    if (instance.state === "running") {
      if ((await ctx.processes.programState(name))?.state === "RUNNING") return instance;
      await handleDeadRunning(ctx, instance);
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
    await stopLocked(ctx, instance, options.cause ?? causeOf(ctx), options.message);
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
    await recordEvent(ctx, name, "suspend", "ok", { cause: causeOf(ctx) });
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
      cause: causeOf(ctx),
      message: "wakes on its next request",
    });
    return instance;
  });
}

export async function restartInstance(
  ctx: AccContext,
  name: string,
  cause = causeOf(ctx),
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
      backup = (await createFinalBackup(ctx, instance)).dir;
    }
    if (mayBeAlive(instance.state)) await stopLocked(ctx, instance, "destroy");
    await setState(ctx, instance, "destroying", { operation: "destroy" });
    ctx.progress.step(`removing ${name}`);
    await removeEverywhere(ctx, name);
    await recordEvent(ctx, name, "destroy", "ok", {
      cause: causeOf(ctx),
      durationMs: elapsed(started),
      message: backup ? `final backup in ${backup}` : "no final backup (--no-backup)",
    });
    return { name, backup };
  });
}
