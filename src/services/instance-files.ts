// An instance's files: its folder, env file, rendered config and launch spec, and its setup and
// upgrade steps.
import { open, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { instanceEnv, renderEnvFile } from "../core/instance-env.js";
import type { ModelManifest } from "../core/model.js";
import { instancePaths } from "../core/paths.js";
import { renderTemplate } from "../core/template.js";
import { escapeUntrusted } from "../core/untrusted-text.js";
import { AccError } from "../lib/errors.js";
import { ExecError } from "../lib/exec.js";
import { ensureOwnedDir, writeFileAtomic } from "../lib/files.js";
import type { AccContext } from "./context.js";
import { launcherArgv, writeLaunchSpec } from "./launch.js";
import { publicUrl } from "./tls-url.js";
import type { LoadedModel } from "./models.js";
import type { UserIds } from "./users.js";

/** How much of a setup or upgrade step's output a failure keeps (its last 20 lines, at most). */
const SETUP_TAIL_CHARS = 16_384;

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
    url: publicUrl(ctx, instance.name, instance.hosts[0] ?? ""),
    data_dir: p.data,
    config_dir: p.config,
  };
  for (const [key, value] of Object.entries(params)) vars[`params.${key}`] = value;
  return vars;
}

/** What acc renders for an instance: its env file's variables and its config templates. */
export interface RenderedFiles {
  env: Record<string, string>;
  templates: { target: string; text: string; mode: number }[];
}

/** Renders the instance's env and templates from its model and parameters; writes nothing. */
export async function renderInstanceFiles(
  ctx: AccContext,
  instance: { name: string; port: number; hosts: string[] },
  model: LoadedModel,
  params: Record<string, string>,
  /** DATABASE_URL and PG* of its database, when it has one. */
  databaseEnv: Record<string, string> = {},
): Promise<RenderedFiles> {
  const p = instancePaths(ctx.home, instance.name);
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
    // The one folder it may write: tools that keep files in $HOME (caches, dotfiles) work.
    home: p.data,
    path: `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    params,
    modelEnv: { ...modelEnv, ...databaseEnv },
  });
  const templates: RenderedFiles["templates"] = [];
  for (const template of model.manifest.templates) {
    const text = await readFile(path.join(model.dir, template.source), "utf8");
    templates.push({
      target: template.target,
      text: renderTemplate(text, vars, `${model.manifest.name}: ${template.source}`),
      mode: readOnlyForGroup(template.mode ?? 0o600),
    });
  }
  return { env, templates };
}

/**
 * Writes the instance's folder, env file, rendered templates and launch spec. Idempotent.
 * Everything but data/ is root's and read-only to the instance (its group): the instance can
 * replace nothing that root writes or reads later (design.md, "Users and privileges").
 */
export async function writeInstanceFiles(
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
  // Root's, readable by the instance's group only; the user itself owns data/ alone.
  const group = ids ? { uid: 0, gid: ids.gid } : undefined;
  await ensureOwnedDir(ctx.paths.instances, 0o711);
  await ensureOwnedDir(ctx.paths.logs, 0o700);
  await ensureOwnedDir(p.root, 0o750, group);
  await ensureOwnedDir(p.config, 0o750, group);
  await ensureOwnedDir(p.data, 0o700, ids);
  await ensureOwnedDir(p.logs, 0o700);
  const rendered = await renderInstanceFiles(ctx, instance, model, params, databaseEnv);
  await writeFileAtomic(p.env, renderEnvFile(rendered.env), { mode: 0o640, ...group });
  for (const template of rendered.templates) {
    const target = path.join(p.config, template.target);
    for (let dir = path.dirname(target); dir !== p.config; dir = path.dirname(dir)) {
      await ensureOwnedDir(dir, 0o750, group);
    }
    await writeFileAtomic(target, template.text, { mode: template.mode, ...group });
  }
  await writeLaunchSpec(ctx, instance, model.manifest, codeDir, ids);
}

/**
 * Every parameter value of an instance for its model: the public ones from the store, the
 * secret ones from its env file (PARAM_*), which root wrote.
 */
export function paramValuesOf(
  manifest: ModelManifest,
  publicParams: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string>>,
): Record<string, string> {
  const params: Record<string, string> = {};
  for (const key of Object.keys(manifest.params)) {
    const value = publicParams[key] ?? env[`PARAM_${key.toUpperCase()}`];
    if (value !== undefined) params[key] = value;
  }
  return params;
}

/**
 * Removes the rendered templates of another version of the instance's model that this one does
 * not render (an upgrade dropped them, or a rollback goes back to a version without them). The
 * config folder is root's: nothing in it can have been swapped for a link.
 */
export async function removeStaleTemplates(
  ctx: AccContext,
  name: string,
  kept: ModelManifest,
  other: ModelManifest | undefined,
): Promise<void> {
  const config = instancePaths(ctx.home, name).config;
  const keep = new Set(kept.templates.map((t) => t.target));
  for (const template of other?.templates ?? []) {
    if (!keep.has(template.target)) await rm(path.join(config, template.target), { force: true });
  }
}

/**
 * A template's mode made read-only for the app: the owner (root) keeps the model's bits, the
 * instance's group gets the owner's read and execute bits, others nothing.
 */
function readOnlyForGroup(mode: number): number {
  return (mode & 0o700) | ((mode >> 3) & 0o050);
}

/**
 * Runs the model's setup step (at create) or upgrade step (at an upgrade), as `/bin/sh -c`
 * runs its command (its exit status is the step's). Its output is appended to the instance's
 * app.log (`acc logs` shows it with the app's) and shown on the caller's terminal; a failure
 * carries its last lines.
 */
export async function runModelStep(
  ctx: AccContext,
  name: string,
  model: LoadedModel,
  which: "setup" | "upgrade",
): Promise<void> {
  const step = model.manifest[which];
  if (!step) return;
  ctx.progress.step(`${name}: running ${which}: ${step.command}`);
  const [launcher, ...args] = launcherArgv(ctx, name, which);
  // HOME/logs/NAME is root's (0700): the instance cannot put a link where root appends.
  const log = await open(instancePaths(ctx.home, name).appLog, "a", 0o600);
  // Appends in the order the output came, each after the last; a failed one fails the step.
  let logged: Promise<unknown> = Promise.resolve();
  let tail = "";
  try {
    // acc-launch drops to the instance's user and enters its sandbox, as for the app.
    await ctx.exec(launcher as string, args, {
      cwd: "/",
      timeoutMs: step.timeout ?? 300_000,
      env: { PATH: "/usr/bin:/bin" },
      output: (text) => {
        logged = logged.then(() => log.write(text));
        // Seen in `finally` below; until then, not an unhandled rejection.
        logged.catch(() => undefined);
        tail = (tail + text).slice(-SETUP_TAIL_CHARS);
        ctx.progress.output?.(text);
      },
    });
  } catch (error) {
    const status =
      error instanceof ExecError
        ? error.exitCode !== null
          ? ` (exit status ${error.exitCode})`
          : error.signal !== null
            ? ` (${error.signal})`
            : ""
        : "";
    throw new AccError("ACC_FAILED", `${which} of ${name} failed${status}: ${step.command}`, {
      cause: error,
      details: escapeUntrusted(tail.trimEnd().split("\n").slice(-20).join("\n"), {
        keepLines: true,
      }),
    });
  } finally {
    await logged.finally(() => log.close());
  }
}

/** The instance's supervisord program: acc-launch, run as root, which drops to the instance's user. */
export async function writeInstanceProgram(
  ctx: AccContext,
  name: string,
  manifest: ModelManifest,
  codeDir: string,
): Promise<void> {
  await ctx.processes.writeProgram({
    name,
    command: launcherArgv(ctx, name, "run"),
    directory: codeDir,
    logFile: instancePaths(ctx.home, name).appLog,
    stopTimeoutSec: Math.ceil((manifest.stop_timeout ?? ctx.config.stop_timeout) / 1000),
  });
}
