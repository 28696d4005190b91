// Who may reach what in HOME (design.md, "Users and privileges"): acc's own files are root's
// alone (or the current user's), and other users only pass through the folders that lead to
// theirs. nginx's, supervisord's and Postgres's folders are set by their drivers, the store's
// file where it is opened; instances' folders are not changed here.
import { chmod, lstat, readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { HomePaths } from "../core/paths.js";
import { hasErrno } from "../lib/errors.js";
import { ensureDirMode, readDirIfExists } from "../lib/files.js";
import type { AccContext } from "./context.js";

/** HOME's mode: instances reach their code, nginx's workers and Postgres their folders. */
const HOME_MODE = 0o711;

/** As root: creates nginx_user and postgres_user, the users of acc's exposed services. */
export async function ensureServiceUsers(ctx: AccContext): Promise<void> {
  if (!ctx.isRoot) return;
  await ctx.users.ensureService(ctx.config.nginx_user);
  await ctx.users.ensureService(ctx.config.postgres_user);
}

/**
 * Sets the modes of HOME, acc.toml, models/, code/ and backups/; creates the folders when
 * missing. Idempotent; existing backups are walked once, when HOME still has an older mode.
 */
export async function restrictHome(paths: HomePaths): Promise<void> {
  const walked = ((await stat(paths.home)).mode & 0o777) === HOME_MODE;
  try {
    await chmod(paths.config, 0o600);
  } catch (error) {
    if (!hasErrno(error, "ENOENT")) throw error;
  }
  await ensureDirMode(paths.models, 0o700);
  // Instances open their own model's code/<model>-<version>-<hash>/ (0755), and list none.
  await ensureDirMode(paths.code, 0o711);
  await ensureDirMode(paths.backups, 0o700);
  // Each instance passes through to its own folder (root:its group, 0750) and lists none.
  await ensureDirMode(paths.instances, 0o711);
  // Instances' logs: supervisord (root) writes them; only root reads them.
  await ensureDirMode(paths.logs, 0o700);
  if (!walked) await restrictBackups(paths.backups);
  // Last, so that a walk cut short is done again.
  await chmod(paths.home, HOME_MODE);
}

/**
 * Each backup's folders 0700 and files 0600. A folder doctor moved here (orphan-*) holds an
 * instance's own files: it is never walked as root, and backups/ (0700) already closes it.
 */
async function restrictBackups(backups: string): Promise<void> {
  for (const name of await readDirIfExists(backups)) {
    const instanceDir = path.join(backups, name);
    if (!(await lstat(instanceDir)).isDirectory()) continue;
    await chmod(instanceDir, 0o700);
    for (const stamp of await readdir(instanceDir)) {
      const dir = path.join(instanceDir, stamp);
      if (stamp.startsWith("orphan-") || !(await lstat(dir)).isDirectory()) continue;
      await chmod(dir, 0o700);
      for (const file of await readdir(dir)) {
        const full = path.join(dir, file);
        if ((await lstat(full)).isFile()) await chmod(full, 0o600);
      }
    }
  }
}
