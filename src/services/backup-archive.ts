import { constants } from "node:fs";
import { lstat, open, readdir, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { showValue, validateInstanceName } from "../core/validate.js";
import { AccError, hasErrno } from "../lib/errors.js";
import type { AccContext } from "./context.js";

/** A backup's folder name: the time it was made (services/backups.ts stamp()). */
const BACKUP_ID_RE = /^\d{8}T\d{6,9}Z$/;
const FILE_RE = /^[A-Za-z0-9._-]{1,64}$/;
const BLOCK = 512;

export interface BackupArchive {
  filename: string;
  bytes: number;
  stream: Readable;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

/** A ustar header for a regular file (pure: tested on its own). */
export function tarHeader(name: string, size: number, mtime: number): Buffer {
  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, "utf8");
  header.write(octal(0o600, 8), 100, "ascii");
  header.write(octal(0, 8), 108, "ascii");
  header.write(octal(0, 8), 116, "ascii");
  header.write(octal(size, 12), 124, "ascii");
  header.write(octal(Math.floor(mtime), 12), 136, "ascii");
  header.write("        ", 148, "ascii");
  header.write("0", 156, "ascii");
  header.write("ustar\0", 257, "ascii");
  header.write("00", 263, "ascii");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return header;
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

async function isRealDirectory(dir: string): Promise<boolean> {
  try {
    return (await lstat(dir)).isDirectory();
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return false;
    throw error;
  }
}

/**
 * One backup of one instance as a tar stream: the regular files of its folder, each opened
 * with O_NOFOLLOW (a link is never followed, anything but a regular file is left out), the
 * folder itself checked to be a real folder inside HOME/backups/NAME. Backups hold the
 * instance's secrets: the operation's permission is the guard.
 */
export async function openBackupArchive(
  ctx: AccContext,
  name: string,
  backup: string,
): Promise<BackupArchive> {
  const instance = validateInstanceName(name);
  if (!BACKUP_ID_RE.test(backup)) {
    throw new AccError("ACC_INVALID", `invalid backup ${showValue(backup)}`, {
      hint: "use a backup's time stamp from acc backups NAME, such as 20261126T010203456Z",
    });
  }
  const parent = path.join(ctx.paths.backups, instance);
  const dir = path.join(parent, backup);
  if (!(await isRealDirectory(parent)) || !(await isRealDirectory(dir))) {
    throw new AccError("ACC_NOT_FOUND", `no backup ${instance}/${backup}`, {
      hint: `acc backups ${instance} lists them`,
    });
  }
  const files: { entry: string; handle: FileHandle; size: number; mtime: number }[] = [];
  try {
    for (const entry of (await readdir(dir)).sort()) {
      if (!FILE_RE.test(entry)) continue;
      let handle: FileHandle;
      try {
        handle = await open(path.join(dir, entry), constants.O_RDONLY | constants.O_NOFOLLOW);
      } catch (error) {
        if (hasErrno(error, "ELOOP") || hasErrno(error, "ENOENT")) continue;
        throw error;
      }
      const info = await handle.stat();
      if (!info.isFile()) {
        await handle.close();
        continue;
      }
      files.push({ entry, handle, size: info.size, mtime: info.mtimeMs / 1000 });
    }
    if (!files.some((f) => f.entry === "manifest.json")) {
      throw new AccError("ACC_NOT_FOUND", `no backup ${instance}/${backup} (no manifest)`, {
        hint: `acc backups ${instance} lists them`,
      });
    }
  } catch (error) {
    await Promise.all(files.map((f) => f.handle.close()));
    throw error;
  }
  const folder = `${instance}-${backup}`;
  const bytes = files.reduce((sum, f) => sum + BLOCK + f.size + padding(f.size), 0) + 2 * BLOCK;
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for (const file of files) {
        yield tarHeader(`${folder}/${file.entry}`, file.size, file.mtime);
        // Exactly the size announced: a file that shrank since is padded, one that grew cut.
        let done = 0;
        while (done < file.size) {
          const buffer = Buffer.alloc(Math.min(1 << 20, file.size - done));
          const { bytesRead } = await file.handle.read(buffer, 0, buffer.length, done);
          if (bytesRead === 0) {
            yield Buffer.alloc(file.size - done);
            break;
          }
          done += bytesRead;
          yield buffer.subarray(0, bytesRead);
        }
        yield Buffer.alloc(padding(file.size));
      }
      yield Buffer.alloc(2 * BLOCK);
    } finally {
      await Promise.all(files.map((f) => f.handle.close()));
    }
  }
  return { filename: `acc-backup-${folder}.tar`, bytes, stream: Readable.from(chunks()) };
}
