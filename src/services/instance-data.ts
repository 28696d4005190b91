// An instance's data/ is the one folder its user can write, so anything in it may be a trap: a
// link to root's files, a FIFO, a socket, a 100 GB sparse file, a name with a newline. Root
// never opens, reads, chowns or removes anything inside it: archiving, extracting and removing
// run as the instance's user, so the kernel checks what each may touch. Root only creates,
// renames and removes (once empty) entries of the instance's own folder, which is root's: the
// instance can put nothing there for root to follow.
import { constants } from "node:fs";
import { lchown, mkdir, open, readdir, rmdir } from "node:fs/promises";
import path from "node:path";
import { instancePaths } from "../core/paths.js";
import { escapeUntrusted } from "../core/untrusted-text.js";
import { AccError } from "../lib/errors.js";
import { ExecError, type ExecOptions } from "../lib/exec.js";
import type { AccContext } from "./context.js";
import { instanceUserName, type UserIds } from "./users.js";

/**
 * The owner of an instance's data: its user's ids, or undefined when acc does not run as root
 * (then data/ is acc's own user's).
 */
export type DataOwner = UserIds | undefined;

/** Where an older acc's restore staged inside the instance's folder (doctor removes them). */
const STAGING_PREFIX = ".restore-";
const OLD_DATA_PREFIX = ".old-data-";
const TAR_TIMEOUT_MS = 60 * 60_000;
/** tar names each skipped or changed file: a backup keeps this many of its lines. */
const MAX_WARNINGS = 20;

/** The instance's user, as whom its data is handled; fails when it is missing. */
export async function dataOwner(ctx: AccContext, name: string): Promise<DataOwner> {
  if (!ctx.isRoot) return undefined;
  const user = instanceUserName(name);
  const ids = await ctx.users.lookup(user);
  if (!ids) {
    throw new AccError("ACC_FAILED", `instance ${name} has no system user ${user}`, {
      hint: "acc doctor says what is half-made",
    });
  }
  return ids;
}

/** Runs as the owner, with nothing of root's environment. */
function asOwner(owner: DataOwner): ExecOptions {
  return {
    cwd: "/",
    env: { PATH: "/usr/bin:/bin", LC_ALL: "C" },
    timeoutMs: TAR_TIMEOUT_MS,
    ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
  };
}

/** tar's or find's messages, one escaped line each (file names are the instance's), no summary. */
function commandMessages(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter((line) => line.trim() !== "" && !/Exiting with failure status/.test(line))
    .map((line) => escapeUntrusted(line));
}

/** A failed tar, find or chmod as an AccError naming what failed, with its messages escaped. */
function ownerCommandFailed(what: string, error: unknown): Error {
  if (!(error instanceof ExecError))
    return error instanceof Error ? error : new Error(String(error));
  const program = error.command[0] ?? "";
  const how =
    error.exitCode !== null
      ? `${program} exited with status ${error.exitCode}`
      : `${program} was stopped (${error.signal ?? escapeUntrusted(error.stderr.trim())})`;
  return new AccError("ACC_FAILED", `${what}: ${how}`, {
    cause: error,
    details: commandMessages(error.stderr).slice(0, MAX_WARNINGS).join("\n"),
  });
}

/**
 * Archives data/ into `archive` (a new file in root's backup folder) with tar run as the owner:
 * links are archived as links, FIFOs as FIFOs (never opened), sockets are skipped, holes stay
 * holes. Root only writes the bytes tar sends; the archive is the instance's, never extracted
 * as root. Returns tar's warnings: files skipped (sockets, files the instance made unreadable
 * to its own user) or changed while read.
 */
export async function archiveData(
  ctx: AccContext,
  name: string,
  owner: DataOwner,
  archive: string,
): Promise<string[]> {
  const file = await open(
    archive,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  const out = file.createWriteStream();
  let stderr: string;
  try {
    ({ stderr } = await ctx.exec(
      "tar",
      [
        "--create",
        "--gzip",
        // A 100 GB sparse file costs a few bytes of archive and no time to read.
        "--sparse",
        // A file the instance made unreadable to its own user is a warning, not a failed backup:
        // else an instance could block its own backups, and the final one of its destroy.
        "--ignore-failed-read",
        "--file=-",
        `--directory=${instancePaths(ctx.home, name).root}`,
        "--",
        "data",
      ],
      { ...asOwner(owner), stdout: out },
    ));
  } catch (error) {
    // Status 1: a file changed while it was read (the instance may be running). The archive is
    // complete, and that file as consistent as a running app's files ever are: a warning.
    if (!(error instanceof ExecError) || error.exitCode !== 1) {
      throw ownerCommandFailed(`archiving ${name}'s data failed`, error);
    }
    stderr = error.stderr;
  }
  const warnings = commandMessages(stderr);
  return warnings.length <= MAX_WARNINGS
    ? warnings
    : [...warnings.slice(0, MAX_WARNINGS), `and ${warnings.length - MAX_WARNINGS} more`];
}

/**
 * Extracts the data/ of an archive as the owner into `staging`, a new folder made here in a
 * folder of root's (never one the instance can write): data/x lands in STAGING/x, so the
 * staging folder becomes the new data/. Whatever the archive holds (links, then files through
 * them; absolute names) is written with the instance's rights only.
 */
export async function extractData(
  ctx: AccContext,
  name: string,
  owner: DataOwner,
  archive: string,
  staging: string,
): Promise<void> {
  await mkdir(staging, { mode: 0o700 });
  if (owner) await lchown(staging, owner.uid, owner.gid);
  try {
    const input = await open(archive, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      await ctx.exec(
        "tar",
        [
          "--extract",
          "--gzip",
          "--file=-",
          `--directory=${staging}`,
          "--strip-components=1",
          "--no-same-owner",
          "--",
          "data",
        ],
        { ...asOwner(owner), stdinFd: input.fd },
      );
    } finally {
      await input.close();
    }
  } catch (error) {
    const failure = ownerCommandFailed(`extracting the backup's data into ${name} failed`, error);
    // What tar wrote goes too; if that fails, the restore's journal lets doctor remove it.
    await removeAsOwner(ctx, staging, owner).catch((cleanup: unknown) => {
      throw new AccError(
        "ACC_FAILED",
        `${failure.message}; and its staging folder ${staging} could not be removed: ${
          cleanup instanceof Error ? cleanup.message : String(cleanup)
        }`,
        { cause: failure },
      );
    });
    throw failure;
  }
}

/**
 * Removes a folder of the owner's that root made in the instance's folder (a staging folder,
 * replaced data): its content as the owner, then the empty folder itself.
 */
export async function removeAsOwner(ctx: AccContext, dir: string, owner: DataOwner): Promise<void> {
  try {
    // A folder the instance made unwritable to itself keeps its entries: its owner may open it.
    await ctx.exec(
      "find",
      ["-P", dir, "-type", "d", "!", "-perm", "-u=rwx", "-exec", "chmod", "u+rwx", "--", "{}", ";"],
      asOwner(owner),
    );
    await ctx.exec("find", ["-P", dir, "-mindepth", "1", "-delete"], asOwner(owner));
  } catch (error) {
    throw ownerCommandFailed(`removing ${dir} as its owner failed`, error);
  }
  await rmdir(dir);
}

/**
 * What a restore of an older acc, killed half-way, left in the instance's folder (it staged
 * there): the folders' names.
 */
export async function legacyRestoreLeftovers(ctx: AccContext, name: string): Promise<string[]> {
  const root = instancePaths(ctx.home, name).root;
  return (await readdir(root))
    .filter((entry) => entry.startsWith(STAGING_PREFIX) || entry.startsWith(OLD_DATA_PREFIX))
    .map((entry) => path.join(root, entry));
}
