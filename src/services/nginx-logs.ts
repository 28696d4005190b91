// Size-based rotation of acc's nginx logs (HOME/nginx/logs): access.log, which the idle clock
// reads, and error.log. acc server's monitor rotates them right after a pass has read the
// access log, under the same lease, so the reader finds the old file as access.log.1 and
// finishes it from its saved offset before it reads the new one from the start.
import { rename, stat } from "node:fs/promises";
import { accessLogPath, errorLogPath } from "../drivers/nginx/render.js";
import { hasErrno } from "../lib/errors.js";
import type { AccContext } from "./context.js";

/** Old generations kept of each log: access.log.1 (newest) to access.log.3. */
export const NGINX_LOG_GENERATIONS = 3;

/**
 * The renames that shift a log's generations, in the order to do them: the oldest kept one
 * is overwritten by the one before it, ..., and the live file becomes FILE.1.
 */
export function rotationRenames(file: string, keep: number): [string, string][] {
  const renames: [string, string][] = [];
  for (let n = keep - 1; n >= 1; n--) renames.push([`${file}.${n}`, `${file}.${n + 1}`]);
  renames.push([file, `${file}.1`]);
  return renames;
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return 0;
    throw error;
  }
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if (!hasErrno(error, "ENOENT")) throw error;
  }
}

/**
 * Rotates each of nginx's logs that has grown past nginx_log_max_mb, then reloads nginx so
 * that it writes new files. A reload, not `nginx -s reopen` (USR1): on a reopen each worker
 * opens the log again itself, as nginx_user, and HOME/nginx/logs (0700, root's) keeps it out,
 * so the workers would go on writing the renamed file. A reload has the master open the new
 * files and hand them to new workers; the old workers write their last buffered lines to the
 * renamed file as they exit, where the next pass finds them. Returns the logs rotated.
 */
export async function rotateNginxLogs(
  ctx: Pick<AccContext, "paths" | "config" | "proxy">,
): Promise<string[]> {
  const max = ctx.config.nginx_log_max_mb * 1024 * 1024;
  if (max <= 0) return [];
  const due: string[] = [];
  for (const file of [accessLogPath(ctx.paths), errorLogPath(ctx.paths)]) {
    if ((await sizeOf(file)) > max) due.push(file);
  }
  if (due.length === 0) return [];
  for (const file of due) {
    // HOME/nginx/logs is root's (0700): no one else can put a link where these renames land.
    for (const [from, to] of rotationRenames(file, NGINX_LOG_GENERATIONS)) {
      await renameIfExists(from, to);
    }
  }
  await ctx.proxy.reload();
  return due;
}
