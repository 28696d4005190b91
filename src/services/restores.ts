// A restore puts a backup's data/ and database in place of an instance's together or not at
// all. Both are staged first in HOME/restores/NAME, a folder of root's beside instances/ (on the
// same filesystem, so that the swap is a rename): data/ extracted there by tar run as the
// instance's user, the database restored by pg_restore into a database of another name. A
// journal there says how far the restore got. Once both are staged it says "prepared": that is
// the commit point. From then on, whoever finds the journal (the restore itself, the next start
// of the instance, doctor) finishes it: the databases renamed in one transaction, data/ swapped
// by renames. Before it, whoever finds the journal undoes it: the staged copies go, the
// instance keeps its own. Each step of either is idempotent, so a crash during a repair is
// repaired by the next one.
import { lstat, mkdir, rename, rm, rmdir } from "node:fs/promises";
import path from "node:path";
import { instancePaths } from "../core/paths.js";
import { isValidInstanceName, validateInstanceName } from "../core/validate.js";
import { stagedDatabaseName } from "../drivers/postgres/render.js";
import { AccError, errorMessage, hasErrno } from "../lib/errors.js";
import {
  ensureDirMode,
  ensureOwnedDir,
  readDirIfExists,
  readFileIfExists,
  writeFileAtomic,
} from "../lib/files.js";
import { holderAlive, processIdentity, type InstanceRecord } from "../store/store.js";
import { backupDataArchive, backupDump, type BackupManifest } from "./backups.js";
import type { AccContext } from "./context.js";
import { pgAdmin } from "./databases.js";
import {
  extractData,
  legacyRestoreLeftovers,
  removeAsOwner,
  type DataOwner,
} from "./instance-data.js";
import { instanceUserName } from "./users.js";

export interface RestoreJournal {
  instance: string;
  /** The backup's folder. */
  backup: string;
  /** "staging" until data/ and the database are both staged; "prepared" is the commit point. */
  phase: "staging" | "prepared";
  /** Whether a database was staged (then the commit renames it in). */
  database: boolean;
  /** Made by restore --as-new: undoing it removes the instance it was making. */
  asNew: boolean;
  started_at: string;
  /** The process restoring (pid:start-time, as a lease's holder): alive, it is under way. */
  holder: string;
}

const JOURNAL = "journal.json";

interface RestorePaths {
  dir: string;
  journal: string;
  /** data/ as extracted from the backup: the instance's new data/ once committed. */
  staged: string;
  /** The instance's data/ replaced by the commit, until it is removed as its owner. */
  replaced: string;
}

function restorePaths(ctx: AccContext, name: string): RestorePaths {
  const dir = path.join(ctx.paths.restores, validateInstanceName(name));
  return {
    dir,
    journal: path.join(dir, JOURNAL),
    staged: path.join(dir, "data"),
    replaced: path.join(dir, "replaced-data"),
  };
}

/** Whether something is at the path itself (a link is not followed). */
async function present(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return false;
    throw error;
  }
}

async function readJournal(file: string): Promise<RestoreJournal | undefined> {
  const text = await readFileIfExists(file);
  return text === undefined ? undefined : (JSON.parse(text) as RestoreJournal);
}

async function writeJournal(file: string, journal: RestoreJournal): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(journal, null, 2)}\n`, { mode: 0o600 });
}

/**
 * The owner of the staged data: the instance's user, or, when that user is gone (the instance
 * was removed since), null: no process runs as a removed user, so root may remove its files.
 */
async function stagedOwner(ctx: AccContext, name: string): Promise<DataOwner | null> {
  if (!ctx.isRoot) return undefined;
  return (await ctx.users.lookup(instanceUserName(name))) ?? null;
}

async function removeOwned(ctx: AccContext, dir: string, owner: DataOwner | null): Promise<void> {
  if (!(await present(dir))) return;
  if (owner === null) await rm(dir, { recursive: true, force: true });
  else await removeAsOwner(ctx, dir, owner);
}

/** Removes the restore's folder once its staged copies are gone: the journal and its temp files. */
async function removeRestoreDir(p: RestorePaths): Promise<void> {
  for (const entry of await readDirIfExists(p.dir)) {
    if (entry === JOURNAL || (entry.startsWith(`.${JOURNAL}.`) && entry.endsWith(".tmp"))) {
      await rm(path.join(p.dir, entry), { force: true });
    }
  }
  try {
    await rmdir(p.dir);
  } catch (error) {
    if (!hasErrno(error, "ENOENT")) throw error;
  }
}

async function undoRestore(
  ctx: AccContext,
  p: RestorePaths,
  journal: RestoreJournal | undefined,
  owner: DataOwner | null,
): Promise<void> {
  const name = path.basename(p.dir);
  // The database first: a killed pg_restore may still write into it (drop ends its session).
  if (journal?.database === true) await (await pgAdmin(ctx)).abortRestore(name);
  await removeOwned(ctx, p.staged, owner);
  await removeRestoreDir(p);
}

async function commitRestore(
  ctx: AccContext,
  p: RestorePaths,
  journal: RestoreJournal,
  owner: DataOwner | null,
): Promise<void> {
  const name = path.basename(p.dir);
  // The database first: if Postgres is down, nothing is swapped yet and the instance is whole.
  if (journal.database) await (await pgAdmin(ctx)).commitRestore(name);
  const data = instancePaths(ctx.home, name).data;
  if (await present(p.staged)) {
    if ((await present(data)) && !(await present(p.replaced))) await rename(data, p.replaced);
    await rename(p.staged, data);
  }
  await removeOwned(ctx, p.replaced, owner);
  await removeRestoreDir(p);
}

export type RestoreOutcome = "finished" | "undone";

/**
 * Finishes or undoes the interrupted restore of an instance, if there is one (the caller holds
 * its lease, or knows its holder died). Returns what was done and the journal, if any.
 */
export async function settleRestore(
  ctx: AccContext,
  name: string,
): Promise<{ outcome: RestoreOutcome; journal: RestoreJournal | undefined } | undefined> {
  const p = restorePaths(ctx, name);
  const journal = await readJournal(p.journal);
  if (journal === undefined && !(await present(p.dir))) return undefined;
  if (journal !== undefined && restoreUnderWay(journal)) return undefined;
  const owner = await stagedOwner(ctx, name);
  const exists = (await ctx.store.getInstance(name)) !== undefined;
  if (journal?.phase === "prepared" && exists) {
    // Undoing now could leave the backup's database with the instance's own data/.
    if (owner === null) {
      throw new AccError(
        "ACC_FAILED",
        `the restore of ${name} reached its commit point but its system user ${instanceUserName(name)} is missing`,
        { hint: "acc doctor says what else is half-made" },
      );
    }
    await commitRestore(ctx, p, journal, owner);
    return { outcome: "finished", journal };
  }
  await undoRestore(ctx, p, journal, owner);
  return { outcome: "undone", journal };
}

/** Whether another live process is making this restore (a restore --as-new between its steps). */
export function restoreUnderWay(journal: RestoreJournal): boolean {
  return journal.holder !== processIdentity(process.pid) && holderAlive(journal.holder);
}

/** The journal of the instance's restore that is under way or was interrupted, if any. */
export function pendingRestore(ctx: AccContext, name: string): Promise<RestoreJournal | undefined> {
  return readJournal(restorePaths(ctx, name).journal);
}

/** Instances with a restore folder: restores under way or interrupted. */
export async function restoresInProgress(
  ctx: AccContext,
): Promise<{ name: string; journal: RestoreJournal | undefined }[]> {
  const out: { name: string; journal: RestoreJournal | undefined }[] = [];
  for (const name of await readDirIfExists(ctx.paths.restores)) {
    if (!isValidInstanceName(name)) continue; // not a restore's: acc makes no other
    out.push({ name, journal: await readJournal(restorePaths(ctx, name).journal) });
  }
  return out;
}

/**
 * Records a restore --as-new before its instance is created, so that a crash at any point of
 * it leaves a journal: doctor then removes the half-made instance, unless the restore reached
 * its commit point. Fails when a restore of that name is under way or was interrupted.
 */
export async function beginRestoreAsNew(
  ctx: AccContext,
  name: string,
  backupDir: string,
): Promise<void> {
  const p = restorePaths(ctx, name);
  await ensureDirMode(ctx.paths.restores, 0o711);
  try {
    await mkdir(p.dir, { mode: 0o700 });
  } catch (error) {
    if (!hasErrno(error, "EEXIST")) throw error;
    throw new AccError("ACC_FAILED", `a restore of ${name} is under way or was interrupted`, {
      hint: "acc doctor says which, and --repair settles it",
    });
  }
  await writeJournal(p.journal, {
    instance: name,
    backup: backupDir,
    phase: "staging",
    database: false,
    asNew: true,
    started_at: ctx.now().toISOString(),
    holder: processIdentity(process.pid) ?? String(process.pid),
  });
}

/**
 * Puts a backup's data/ and its database into an instance (stopped by the caller, whose lease
 * it holds), both or neither. The instance keeps its own env file (its database password and
 * secrets stay valid) and its config (acc's rendering).
 */
export async function restoreInto(
  ctx: AccContext,
  instance: InstanceRecord,
  backup: { dir: string; manifest: BackupManifest },
  owner: DataOwner,
  options: { asNew?: boolean } = {},
): Promise<void> {
  const name = instance.name;
  const p = restorePaths(ctx, name);
  const dump = backupDump(backup);
  if (dump !== undefined && instance.database === null) {
    throw new AccError("ACC_FAILED", `backup has a database but instance ${name} has none`);
  }
  // One left by a restore that died first (for --as-new, the journal is this one's own, made
  // by beginRestoreAsNew), and what an older acc's staged in the instance's folder.
  if (options.asNew !== true) await settleRestore(ctx, name);
  for (const leftover of await legacyRestoreLeftovers(ctx, name))
    await removeAsOwner(ctx, leftover, owner);

  // Traversable only: each instance reaches its own folder in it, by name.
  await ensureDirMode(ctx.paths.restores, 0o711);
  await ensureOwnedDir(
    p.dir,
    owner ? 0o750 : 0o700,
    owner ? { uid: 0, gid: owner.gid } : undefined,
  );
  const journal: RestoreJournal = {
    instance: name,
    backup: backup.dir,
    phase: "staging",
    database: dump !== undefined,
    asNew: options.asNew ?? false,
    started_at: ctx.now().toISOString(),
    holder: processIdentity(process.pid) ?? String(process.pid),
  };
  await writeJournal(p.journal, journal);
  try {
    await extractData(ctx, name, owner, backupDataArchive(backup), p.staged);
    if (dump !== undefined) {
      ctx.progress.step(`restoring ${name}'s database (as ${stagedDatabaseName(name)})`);
      await (await pgAdmin(ctx)).stageRestore(name, dump);
    }
  } catch (error) {
    await undoRestore(ctx, p, journal, owner).catch((undoError: unknown) => {
      throw new AccError(
        "ACC_FAILED",
        `restore of ${name} failed (${errorMessage(error)}), and removing what it staged failed too (${errorMessage(undoError)})`,
        { cause: error, hint: "the instance is unchanged; acc doctor --repair removes the rest" },
      );
    });
    throw error;
  }
  journal.phase = "prepared";
  await writeJournal(p.journal, journal);
  try {
    await commitRestore(ctx, p, journal, owner);
  } catch (error) {
    throw new AccError(
      "ACC_FAILED",
      `restore of ${name} is committed but not finished: ${errorMessage(error)}`,
      {
        cause: error,
        hint: "acc doctor --repair (or the instance's next start) finishes it",
      },
    );
  }
}
