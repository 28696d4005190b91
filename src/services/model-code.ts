// Models' code in the home: one folder per model version, shared read-only by its instances.
import { randomInt } from "node:crypto";
import { chmod, cp, readdir, readFile, realpath, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { parseManifest, type ModelManifest } from "../core/model.js";
import { AccError } from "../lib/errors.js";
import { ensureDirMode, writeFileAtomic } from "../lib/files.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import type { LoadedModel } from "./models.js";

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
  instance: Pick<InstanceRecord, "model" | "modelVersion" | "modelHash">,
): Promise<ModelManifest> {
  const dir = codeDirOf(ctx, instance.model, instance.modelVersion, instance.modelHash);
  const cached = ctx.manifests.get(dir);
  if (cached) return cached;
  const file = path.join(dir, "model.toml");
  const manifest = parseManifest(await readFile(file, "utf8"), file);
  ctx.manifests.set(dir, manifest);
  return manifest;
}

/**
 * A model version the home still has in its code folders (pinned by an instance, say), loaded
 * from there: a backup is restored as new from the model version it was made with. Undefined
 * when that version's folder is gone or incomplete.
 */
export async function pinnedModel(
  ctx: AccContext,
  pin: { model: string; version: string; hash: string },
): Promise<LoadedModel | undefined> {
  const dir = codeDirOf(ctx, pin.model, pin.version, pin.hash);
  try {
    await stat(path.join(dir, ".acc-complete"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const file = path.join(dir, "model.toml");
  const manifest = parseManifest(await readFile(file, "utf8"), file);
  if (manifest.name !== pin.model || manifest.version !== pin.version) return undefined;
  return { manifest, dir, source: "user", hash: pin.hash };
}

/** Copies under way in this process, by folder: a batch of upgrades makes one copy, not two. */
const copying = new Map<string, Promise<string>>();

export function ensureSharedCode(ctx: AccContext, model: LoadedModel): Promise<string> {
  const dir = codeDirOf(ctx, model.manifest.name, model.manifest.version, model.hash);
  let copy = copying.get(dir);
  if (copy === undefined) {
    copy = copySharedCode(ctx, model, dir).finally(() => copying.delete(dir));
    copying.set(dir, copy);
  }
  return copy;
}

async function copySharedCode(ctx: AccContext, model: LoadedModel, dir: string): Promise<string> {
  try {
    await stat(path.join(dir, ".acc-complete"));
    return dir;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  // Traversable, not listable: each instance opens its own model's folder (0755 below).
  await ensureDirMode(ctx.paths.code, 0o711);
  // Copy to a temp folder and rename: two creates racing, or a crash, never leave half a copy.
  // A random number, not the time: acc server makes the first instances of a version at once,
  // in one process and often in one millisecond. Digits only: code-prune tells an unfinished
  // copy by that name.
  const temp = `${dir}.tmp-${process.pid}-${randomInt(2 ** 47)}`;
  // A model folder may be a link (HOME/models/foo -> /srv/foo): copy what it points to, else
  // the copy is a second link and npm and .acc-complete would write into the sysadmin's folder.
  const source = await realpath(model.dir);
  await cp(source, temp, {
    recursive: true,
    filter: (src) =>
      !path
        .relative(source, src)
        .split(path.sep)
        .some((part) => part === ".git" || part === "node_modules"),
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

/** How long nginx and the waker wait for the instance's answer, in ms: its model's, else acc.toml's. */
export function requestTimeoutOf(ctx: AccContext, manifest: ModelManifest): number {
  return manifest.request_timeout ?? ctx.config.request_timeout;
}

/** The instance's routing for nginx: its port, its hosts and its request timeout. */
export function siteOf(
  ctx: AccContext,
  instance: Pick<InstanceRecord, "name" | "port" | "hosts">,
  manifest: ModelManifest,
): { name: string; port: number; hosts: string[]; requestTimeout: number } {
  return {
    name: instance.name,
    port: instance.port,
    hosts: instance.hosts,
    requestTimeout: Math.ceil(requestTimeoutOf(ctx, manifest) / 1000),
  };
}
