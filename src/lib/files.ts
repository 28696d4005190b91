import { randomBytes } from "node:crypto";
import {
  access,
  chmod,
  lchown,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
} from "node:fs/promises";
import path from "node:path";
import { hasErrno } from "./errors.js";

export interface WriteOptions {
  mode?: number;
  /** Owner to give the file, when running as root. */
  uid?: number;
  gid?: number;
}

/** Writes a file so that readers see either the old or the new content, never a mix. */
export async function writeFileAtomic(
  file: string,
  content: string,
  options: WriteOptions = {},
): Promise<void> {
  const temp = await stageFile(file, content, options);
  try {
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Writes the content of `file` beside it under a temporary name, synced, with its mode and
 * owner: renaming the returned path onto `file` replaces it at once (writeFileAtomic's first
 * half, for callers that put several files in place together).
 */
export async function stageFile(
  file: string,
  content: string,
  options: WriteOptions = {},
): Promise<string> {
  const temp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`,
  );
  const handle = await open(temp, "wx", options.mode ?? 0o644);
  try {
    await handle.writeFile(content);
    if (options.mode !== undefined) await handle.chmod(options.mode);
    if (options.uid !== undefined && options.gid !== undefined) {
      await handle.chown(options.uid, options.gid);
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  return temp;
}

/** The file's content, or undefined when it does not exist. */
export async function readFileIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return undefined;
    throw error;
  }
}

/** A JSON file's value, or undefined when it does not exist or is not JSON (a torn write). */
export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  const text = await readFileIfExists(file);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

export async function ensureDir(dir: string, mode = 0o755): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
}

/**
 * Makes a folder (when missing) and sets its mode and, as root, its owner. Only for a folder
 * whose parent no instance can write: then nobody can swap it for a link between the check
 * and the change. Anything but a real folder there is refused.
 */
export async function ensureOwnedDir(
  dir: string,
  mode: number,
  owner?: { uid: number; gid: number },
): Promise<void> {
  try {
    await mkdir(dir, { mode });
  } catch (error) {
    if (!hasErrno(error, "EEXIST")) throw error;
  }
  const info = await lstat(dir);
  if (!info.isDirectory()) throw new Error(`${dir} is not a folder`);
  if (owner && (info.uid !== owner.uid || info.gid !== owner.gid)) {
    await lchown(dir, owner.uid, owner.gid);
  }
  if ((info.mode & 0o7777) !== mode) await chmod(dir, mode);
}

/**
 * A folder with exactly this mode, whatever the umask and whatever mode it had. A link there is
 * followed (a sysadmin may put backups/ on another disk): for folders only root's users change.
 */
export async function ensureDirMode(dir: string, mode: number): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
  await chmod(dir, mode);
}

/**
 * Gives a path to a user (as root) and, when it is a real folder, everything in it, without
 * ever following a symbolic link: a link is re-owned itself (lchown), never its target, and only
 * real folders are descended into. A path below a folder swapped for a link meanwhile would
 * still be followed, so a real folder at the top is first given to root: with a mode that lets
 * only its owner in (0700), its old owner can no longer reach into it while this runs. Each
 * folder is re-owned after its contents and the top last, so a walk cut short leaves the top
 * with root, for the next run to see and finish.
 */
export async function chownTreeNoFollow(
  target: string,
  ids: { uid: number; gid: number },
): Promise<void> {
  if ((await lstat(target)).isDirectory()) {
    await lchown(target, 0, 0);
    await chownContents(target, ids);
  }
  await lchown(target, ids.uid, ids.gid);
}

async function chownContents(dir: string, ids: { uid: number; gid: number }): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    // A Dirent's type is lstat's: a link to a folder is a link here.
    if (entry.isDirectory()) await chownContents(full, ids);
    await lchown(full, ids.uid, ids.gid);
  }
}

/** A folder's entries; none when it does not exist. */
export async function readDirIfExists(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return [];
    throw error;
  }
}

/**
 * The last `lines` lines of a file and its size (empty and 0 when it does not exist). Reads
 * backwards in blocks only as far as needed: logs can be large.
 */
export async function tailFile(
  file: string,
  lines: number,
): Promise<{ text: string; size: number }> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return { text: "", size: 0 };
    throw error;
  }
  const handle = await open(file, "r");
  try {
    let position = size;
    let text = "";
    while (position > 0 && text.split("\n").length <= lines + 1) {
      const length = Math.min(64 * 1024, position);
      position -= length;
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, position);
      text = buffer.toString("utf8") + text;
    }
    const all = text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");
    return { text: all.slice(-lines).join("\n"), size };
  } finally {
    await handle.close();
  }
}

/** Whether something is at that path (a link is followed). */
export async function pathExists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
