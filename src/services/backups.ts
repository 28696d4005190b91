import { createHash } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import {
  chmod,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import path from "node:path";
import { parseEnvFile } from "../core/instance-env.js";
import { instancePaths } from "../core/paths.js";
import { showValue } from "../core/validate.js";
import { AccError, hasErrno } from "../lib/errors.js";
import { ExecError } from "../lib/exec.js";
import { readDirIfExists, writeFileAtomic } from "../lib/files.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { pgAdmin } from "./databases.js";
import { archiveData, dataOwner } from "./instance-data.js";

export interface BackupManifest {
  /**
   * 2: data.tar.gz, made by tar run as the instance's user, and env, copied by root.
   * 1 (older acc): files.tar.gz, made by root, with data/, config/ and env.
   */
  format: 1 | 2;
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
  /** What tar said while archiving data/: files it skipped (sockets, unreadable) or saw change. */
  warnings?: string[];
}

export interface BackupResult {
  dir: string;
  warnings: string[];
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

/** data/, as the instance's user archived it: the instance's own bytes, never extracted as root. */
const DATA_ARCHIVE = "data.tar.gz";
/** A copy of the instance's env file (its secrets), made by root. */
const ENV = "env";
/** Format 1's one archive (data/, config/, env), made by root. */
const LEGACY_ARCHIVE = "files.tar.gz";
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
 * Backs up an instance without waking it: data/ archived by tar run as the instance's user (so
 * nothing in it is followed or opened as root), a copy of its env file (its secrets), and its
 * database with pg_dump (a consistent snapshot, custom format). Its config is not kept: acc
 * renders it. The backup gets its final name only once complete, with a manifest of checksums.
 */
export async function createBackup(
  ctx: AccContext,
  instance: InstanceRecord,
  reason: string,
): Promise<BackupResult> {
  const now = ctx.now();
  const dir = path.join(ctx.paths.backups, instance.name, stamp(now));
  const temp = `${dir}.partial`;
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
  await mkdir(temp, { recursive: true, mode: 0o700 });
  try {
    const p = instancePaths(ctx.home, instance.name);
    const warnings = await archiveData(
      ctx,
      instance.name,
      await dataOwner(ctx, instance.name),
      path.join(temp, DATA_ARCHIVE),
    );
    // env is root's, in the instance's folder (root's too): nothing there is the instance's.
    const env = await open(p.env, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      await writeFile(path.join(temp, ENV), await env.readFile(), { mode: 0o600, flag: "wx" });
    } finally {
      await env.close();
    }
    const files = [DATA_ARCHIVE, ENV];
    if (instance.database !== null) {
      ctx.progress.step(`dumping ${instance.name}'s database`);
      await (await pgAdmin(ctx)).dump(instance.name, path.join(temp, DUMP));
      files.push(DUMP);
    }
    const manifest: BackupManifest = {
      format: 2,
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
      warnings,
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
        message:
          warnings.length === 0 ? dir : `${dir} (tar warned, see its manifest: ${warnings[0]})`,
      },
      ctx.now().toISOString(),
    );
    return { dir, warnings };
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw new AccError(
      "ACC_FAILED",
      `backup of ${instance.name} failed: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
        hint: "nothing was changed",
        ...(error instanceof AccError && error.details !== undefined
          ? { details: error.details }
          : {}),
      },
    );
  }
}

export function createFinalBackup(
  ctx: AccContext,
  instance: InstanceRecord,
): Promise<BackupResult> {
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
  // A name longer than a file name may be (255) is not a backup either: the file system would
  // refuse it with ENAMETOOLONG, told as a failure with the whole name in it.
  if (
    !dir.startsWith(`${ctx.paths.backups}/`) ||
    !/^[A-Za-z0-9._/-]+$/.test(id) ||
    id.split("/").some((part) => part.length > 255)
  ) {
    throw new AccError("ACC_INVALID", `invalid backup ${showValue(id)}`, {
      hint: "use an id from acc backups, such as acme/20261126T010203456Z",
    });
  }
  const manifest = await readManifest(dir);
  if (manifest.format !== 1 && manifest.format !== 2) {
    throw new AccError(
      "ACC_FAILED",
      `backup ${id} has format ${showValue(String(manifest.format))}, which this acc does not know`,
      { hint: "restore it with the acc that made it, or a newer one" },
    );
  }
  for (const needed of manifest.format === 2 ? [DATA_ARCHIVE, ENV] : [LEGACY_ARCHIVE]) {
    if (manifest.files[needed] === undefined)
      throw new AccError("ACC_FAILED", `backup ${id} is damaged: its manifest lists no ${needed}`);
  }
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

/**
 * The backup's env file values (secret parameters, for restoring as a new instance), from what
 * root wrote: the env copy, or in a format 1 backup the env member of root's archive, read to
 * stdout (tar creates no file: nothing of the instance's data/ is extracted as root).
 */
export async function backupEnv(
  ctx: AccContext,
  backup: { dir: string; manifest: BackupManifest },
): Promise<Record<string, string>> {
  if (backup.manifest.format === 2) {
    return parseEnvFile(await readFile(path.join(backup.dir, ENV), "utf8"));
  }
  try {
    const { stdout } = await ctx.exec(
      "tar",
      [
        "--extract",
        "--gzip",
        "--to-stdout",
        "--file",
        path.join(backup.dir, LEGACY_ARCHIVE),
        "--",
        "env",
      ],
      { timeoutMs: 60_000 },
    );
    return parseEnvFile(stdout);
  } catch (error) {
    if (!(error instanceof ExecError)) throw error;
    throw new AccError("ACC_FAILED", `the backup at ${backup.dir} has no readable env file`, {
      cause: error,
    });
  }
}

/** The archive of a backup that holds data/. */
export function backupDataArchive(backup: { dir: string; manifest: BackupManifest }): string {
  return path.join(backup.dir, backup.manifest.format === 2 ? DATA_ARCHIVE : LEGACY_ARCHIVE);
}

/** The backup's database dump, or undefined when it has none. */
export function backupDump(backup: { dir: string; manifest: BackupManifest }): string | undefined {
  return backup.manifest.files[DUMP] !== undefined ? path.join(backup.dir, DUMP) : undefined;
}
