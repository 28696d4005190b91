// Brings instances made by an older acc to today's layout (acc boot runs it): their folder was
// the instance user's own, with its config, logs and launcher inside, which let the instance
// point root's writes anywhere. Now the folder is root's and only data/ is the instance's.
import { lstat, open, rename, unlink } from "node:fs/promises";
import { constants } from "node:fs";
import path from "node:path";
import { databaseEnvOf, parseEnvFile } from "../core/instance-env.js";
import { instancePaths } from "../core/paths.js";
import { hasErrno } from "../lib/errors.js";
import { ExecError } from "../lib/exec.js";
import { ensureOwnedDir, writeFileAtomic } from "../lib/files.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { dataOwner, removeAsOwner } from "./instance-data.js";
import { paramValuesOf, writeInstanceFiles, writeInstanceProgram } from "./instance-files.js";
import { writeLaunchSpec } from "./launch.js";
import { instanceCgroups } from "./cgroups.js";
import { renderLaunchSpec } from "../core/sandbox.js";
import { codeDirOf, instanceManifest } from "./model-code.js";
import { sandboxState } from "./sandbox.js";
import type { UserIds } from "./users.js";

/** What the old layout had in an instance's folder besides data/ and env. */
const OLD_ENTRIES = ["config", "logs", "run.sh"];
/** The last this much of an old log is kept in the new log folder. */
const OLD_LOG_BYTES = 10 * 1024 * 1024;

export interface MigrationReport {
  /** Instances moved to today's layout. */
  migrated: string[];
  /** Instances whose launch spec was rewritten (the sandbox became available or went away). */
  refreshed: string[];
  /** Instances that could not be migrated, with why: acc doctor shows them too. */
  failed: { name: string; error: string }[];
}

/**
 * Moves every instance of the old layout (no launch spec) to the new one, and rewrites the
 * launch spec of those whose sandbox no longer matches what this machine offers. Safe to run
 * again; one instance that fails does not stop the others.
 */
export async function migrateInstances(ctx: AccContext): Promise<MigrationReport> {
  const report: MigrationReport = { migrated: [], refreshed: [], failed: [] };
  const sandboxed = (await sandboxState(ctx)).enabled;
  const cgroups = await instanceCgroups(ctx);
  const cgroupsOf = (name: string): { cgroups?: string[] } =>
    cgroups ? { cgroups: cgroups.dirs(name) } : {};
  for (const instance of await ctx.store.listInstances()) {
    // A half-made create or destroy is doctor's to finish or undo.
    if (instance.state === "creating" || instance.state === "destroying") continue;
    const p = instancePaths(ctx.home, instance.name);
    try {
      const spec = await readSpec(p.launch);
      if (spec === undefined) {
        await migrateInstance(ctx, instance);
        report.migrated.push(instance.name);
      } else if (
        /^sandbox /m.test(spec) !== sandboxed ||
        cgroupLine(spec) !==
          cgroupLine(renderLaunchSpec({ ...SPEC_STUB, ...cgroupsOf(instance.name) }))
      ) {
        const ids = await dataOwner(ctx, instance.name);
        const manifest = await instanceManifest(ctx, instance);
        const codeDir = codeDirOf(ctx, instance.model, instance.modelVersion, instance.modelHash);
        await writeLaunchSpec(ctx, instance, manifest, codeDir, ids);
        report.refreshed.push(instance.name);
      }
    } catch (error) {
      report.failed.push({
        name: instance.name,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return report;
}

/** The fields a launch spec must have, for rendering its cgroup line alone. */
const SPEC_STUB = { arch: "x", envFile: "x", chdir: "x", run: ["x"] } as const;

/** The spec's cgroup line (the cgroups acc-launch joins), empty when it has none. */
function cgroupLine(spec: string): string {
  return /^cgroup .*$/m.exec(spec)?.[0] ?? "";
}

async function readSpec(file: string): Promise<string | undefined> {
  try {
    return await readNoFollow(file, 1024 * 1024);
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return undefined;
    throw error;
  }
}

/** A regular file's content, opened without following a link and read up to a limit. */
async function readNoFollow(file: string, limit: number): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(`${file} is not a regular file`);
    // A hard link to a file the instance could not read must not be read for it.
    if (info.nlink > 1) throw new Error(`${file} has other hard links`);
    if (info.size > limit) throw new Error(`${file} is larger than ${limit} bytes`);
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

async function migrateInstance(ctx: AccContext, instance: InstanceRecord): Promise<void> {
  const p = instancePaths(ctx.home, instance.name);
  const ids = await dataOwner(ctx, instance.name);
  // First the folder becomes root's: from then on the instance can add, replace or link
  // nothing in it, so what follows cannot be turned elsewhere. (instances/ is root's, so the
  // folder itself cannot have been swapped for a link.)
  await ensureOwnedDir(p.root, 0o750, ids ? { uid: 0, gid: ids.gid } : undefined);
  const oldEnv = parseEnvFile(await readNoFollow(p.env, 1024 * 1024));
  // The instance's own leftovers go aside (a rename in a root-owned folder follows nothing).
  const aside: string[] = [];
  for (const entry of OLD_ENTRIES) {
    const from = path.join(p.root, entry);
    try {
      await lstat(from);
    } catch (error) {
      if (hasErrno(error, "ENOENT")) continue;
      throw error;
    }
    const to = path.join(p.root, `.old-${entry}`);
    await rename(from, to);
    aside.push(to);
  }
  const manifest = await instanceManifest(ctx, instance);
  const codeDir = codeDirOf(ctx, instance.model, instance.modelVersion, instance.modelHash);
  const params = paramValuesOf(manifest, instance.params, oldEnv);
  const databaseEnv = instance.database !== null ? databaseEnvOf(oldEnv) : {};
  await writeInstanceFiles(
    ctx,
    instance,
    { manifest, dir: codeDir, source: "user", hash: instance.modelHash },
    params,
    codeDir,
    ids,
    databaseEnv,
  );
  await writeInstanceProgram(ctx, instance.name, manifest, codeDir);
  await keepOldLog(ctx, instance.name, ids);
  await removeAside(ctx, aside, ids);
}

/** The end of the old log, read as the instance's user (whatever it made of that file). */
async function keepOldLog(ctx: AccContext, name: string, ids: UserIds | undefined): Promise<void> {
  const p = instancePaths(ctx.home, name);
  try {
    const { stdout } = await ctx.exec(
      "tail",
      ["-c", String(OLD_LOG_BYTES), "--", path.join(p.root, ".old-logs", "app.log")],
      { timeoutMs: 30_000, cwd: "/", ...(ids ? { uid: ids.uid, gid: ids.gid } : {}) },
    );
    if (stdout !== "") await writeFileAtomic(`${p.appLog}.old`, stdout, { mode: 0o600 });
  } catch (error) {
    // No old log (or one that cannot be read as the instance): nothing to keep.
    if (!(error instanceof ExecError)) throw error;
  }
}

/**
 * Removes the set-aside entries: a folder is emptied as the instance's user (it made what is
 * in it), then removed by root; a file is only unlinked (an entry of a root-owned folder).
 */
async function removeAside(
  ctx: AccContext,
  aside: readonly string[],
  ids: UserIds | undefined,
): Promise<void> {
  for (const entry of aside) {
    if ((await lstat(entry)).isDirectory()) await removeAsOwner(ctx, entry, ids);
    else await unlink(entry);
  }
}
