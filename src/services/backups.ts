import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { parseEnvFile } from "../core/instance-env.js";
import { instancePaths } from "../core/paths.js";
import { showValue, validateInstanceName } from "../core/validate.js";
import { AccError, hasErrno } from "../lib/errors.js";
import { chownTree, readDirIfExists, writeFileAtomic } from "../lib/files.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { pgAdmin } from "./databases.js";

export interface BackupManifest {
  format: 1;
  instance: string;
  model: string;
  model_version: string;
  model_hash: string;
  hosts: string[];
  params: Record<string, string>;
  /** Name of the dumped database, or null. */
  database: string | null;
  reason: string;
  created_at: string;
  /** Every file of the backup with its size and sha256, checked before any restore. */
  files: Record<string, { bytes: number; sha256: string }>;
}

export interface BackupInfo {
  id: string;
  instance: string;
  path: string;
  created_at: string;
  reason: string;
  bytes: number;
  database: boolean;
}

const ARCHIVE = "files.tar.gz";
const DUMP = "database.dump";
const MANIFEST = "manifest.json";

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Timestamp usable as a folder name, sortable: 20261126T014501123Z. */
function stamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.(\d{3})Z$/, "$1Z");
}

/**
 * Backs up an instance without waking it: its files (data, config, env with its secrets)
 * read from disk, and its database with pg_dump (a consistent snapshot, custom format).
 * The backup gets its final name only once complete, with a manifest of checksums.
 */
export async function createBackup(
  ctx: AccContext,
  instance: InstanceRecord,
  reason: string,
): Promise<string> {
  const now = ctx.now();
  const dir = path.join(ctx.paths.backups, instance.name, stamp(now));
  const temp = `${dir}.partial`;
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
  await mkdir(temp, { recursive: true, mode: 0o700 });
  try {
    const p = instancePaths(ctx.home, instance.name);
    const archive = path.join(temp, ARCHIVE);
    await ctx.exec(
      "tar",
      [
        "--create",
        "--gzip",
        "--file",
        archive,
        "--directory",
        p.root,
        "--",
        "data",
        "config",
        "env",
      ],
      {
        timeoutMs: 60 * 60_000,
      },
    );
    const files = [ARCHIVE];
    if (instance.database !== null) {
      ctx.progress.step(`dumping ${instance.name}'s database`);
      await (await pgAdmin(ctx)).dump(instance.name, path.join(temp, DUMP));
      files.push(DUMP);
    }
    const manifest: BackupManifest = {
      format: 1,
      instance: instance.name,
      model: instance.model,
      model_version: instance.modelVersion,
      model_hash: instance.modelHash,
      hosts: instance.hosts,
      params: instance.params,
      database: instance.database,
      reason,
      created_at: now.toISOString(),
      files: {},
    };
    for (const file of files) {
      const full = path.join(temp, file);
      // Secrets and every row of its database, whatever the caller's umask.
      await chmod(full, 0o600);
      manifest.files[file] = { bytes: (await stat(full)).size, sha256: await sha256File(full) };
    }
    await writeFileAtomic(path.join(temp, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, {
      mode: 0o600,
    });
    await rename(temp, dir);
    await ctx.store.addEvent(
      {
        instance: instance.name,
        action: "backup",
        cause: reason,
        outcome: "ok",
        durationMs: Date.now() - now.getTime(),
        message: dir,
      },
      ctx.now().toISOString(),
    );
    return dir;
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw new AccError(
      "ACC_FAILED",
      `backup of ${instance.name} failed: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error, hint: "nothing was changed" },
    );
  }
}

export function createFinalBackup(ctx: AccContext, instance: InstanceRecord): Promise<string> {
  return createBackup(ctx, instance, "final backup before destroy");
}

async function readManifest(dir: string): Promise<BackupManifest> {
  try {
    return JSON.parse(await readFile(path.join(dir, MANIFEST), "utf8")) as BackupManifest;
  } catch (error) {
    if (hasErrno(error, "ENOENT")) {
      throw new AccError("ACC_NOT_FOUND", `no backup at ${dir}`, {
        hint: "acc backups lists them",
      });
    }
    throw new AccError("ACC_FAILED", `the backup at ${dir} has an unreadable manifest`, {
      cause: error,
    });
  }
}

/** Backups, newest first; of one instance (destroyed ones included) or of all. */
export async function listBackups(ctx: AccContext, instance?: string): Promise<BackupInfo[]> {
  const names = instance !== undefined ? [instance] : await readDirIfExists(ctx.paths.backups);
  const out: BackupInfo[] = [];
  for (const name of names) {
    let entries: string[];
    try {
      entries = await readdir(path.join(ctx.paths.backups, name));
    } catch (error) {
      if (hasErrno(error, "ENOENT") || hasErrno(error, "ENOTDIR")) continue;
      throw error;
    }
    for (const entry of entries) {
      if (entry.endsWith(".partial")) continue;
      const dir = path.join(ctx.paths.backups, name, entry);
      let manifest: BackupManifest;
      try {
        manifest = await readManifest(dir);
      } catch {
        continue; // not a backup (an orphan folder moved here by doctor, say)
      }
      out.push({
        id: `${name}/${entry}`,
        instance: manifest.instance,
        path: dir,
        created_at: manifest.created_at,
        reason: manifest.reason,
        bytes: Object.values(manifest.files).reduce((sum, f) => sum + f.bytes, 0),
        database: manifest.files[DUMP] !== undefined,
      });
    }
  }
  return out.sort((a, b) => b.created_at.localeCompare(a.created_at));
}

/**
 * Finds a backup by id (NAME/TIMESTAMP, or TIMESTAMP of the given instance, or a path) and
 * checks every file against the manifest's checksums: a damaged backup is never restored.
 */
export async function openBackup(
  ctx: AccContext,
  id: string,
  instance?: string,
): Promise<{ dir: string; manifest: BackupManifest }> {
  const relative =
    id.includes("/") && !path.isAbsolute(id)
      ? id
      : instance !== undefined && !path.isAbsolute(id)
        ? `${instance}/${id}`
        : undefined;
  const dir = path.resolve(ctx.paths.backups, relative ?? id);
  if (!dir.startsWith(`${ctx.paths.backups}/`) || !/^[A-Za-z0-9._/-]+$/.test(id)) {
    throw new AccError("ACC_INVALID", `invalid backup ${showValue(id)}`, {
      hint: "use an id from acc backups, such as acme/20261126T010203456Z",
    });
  }
  const manifest = await readManifest(dir);
  for (const [file, expected] of Object.entries(manifest.files)) {
    const full = path.join(dir, file);
    let actual: string;
    try {
      actual = await sha256File(full);
    } catch (error) {
      if (hasErrno(error, "ENOENT"))
        throw new AccError("ACC_FAILED", `backup ${id} is damaged: ${file} is missing`);
      throw error;
    }
    if (actual !== expected.sha256) {
      throw new AccError(
        "ACC_FAILED",
        `backup ${id} is damaged: the checksum of ${file} does not match its manifest`,
        {
          hint: "refusing to restore it; pick another backup with acc backups",
        },
      );
    }
  }
  return { dir, manifest };
}

/** The backup's env file values (secret parameters, for restoring as a new instance). */
export async function backupEnv(ctx: AccContext, dir: string): Promise<Record<string, string>> {
  const temp = `${dir}.env-${process.pid}`;
  await mkdir(temp, { mode: 0o700 });
  try {
    await ctx.exec(
      "tar",
      ["--extract", "--gzip", "--file", path.join(dir, ARCHIVE), "--directory", temp, "--", "env"],
      { timeoutMs: 60_000 },
    );
    return parseEnvFile(await readFile(path.join(temp, "env"), "utf8"));
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/**
 * Puts a backup's data and config folders and its database into an instance (stopped by the
 * caller). The instance keeps its own env file: its database password and secrets stay valid.
 */
export async function restoreInto(
  ctx: AccContext,
  instance: InstanceRecord,
  backup: { dir: string; manifest: BackupManifest },
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  validateInstanceName(instance.name);
  const p = instancePaths(ctx.home, instance.name);
  const staging = path.join(p.root, `.restore-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { mode: 0o700 });
  try {
    await ctx.exec(
      "tar",
      [
        "--extract",
        "--gzip",
        "--file",
        path.join(backup.dir, ARCHIVE),
        "--directory",
        staging,
        "--",
        "data",
        "config",
      ],
      {
        timeoutMs: 60 * 60_000,
      },
    );
    if (backup.manifest.files[DUMP] !== undefined) {
      if (instance.database === null) {
        throw new AccError(
          "ACC_FAILED",
          `backup has a database but instance ${instance.name} has none`,
        );
      }
      ctx.progress.step(`restoring ${instance.name}'s database`);
      await (await pgAdmin(ctx)).restore(instance.name, path.join(backup.dir, DUMP));
    }
    // Swap folders only once everything above worked.
    for (const folder of ["data", "config"]) {
      await rm(path.join(p.root, folder), { recursive: true, force: true });
      await rename(path.join(staging, folder), path.join(p.root, folder));
      if (owner) await chownTree(path.join(p.root, folder), owner);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
