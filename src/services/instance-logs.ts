import { open, stat } from "node:fs/promises";
import { instancePaths } from "../core/paths.js";
import { hasErrno } from "../lib/errors.js";
import { tailFile } from "../lib/files.js";
import type { AccContext } from "./context.js";
import { getInstance } from "./instances.js";

/**
 * The last lines of an instance's log (its stdout and stderr), as the app wrote them: whoever
 * shows them escapes them (the CLI for a terminal, the UI as HTML), since the app is untrusted.
 * `size` is where `followInstanceLog` goes on from.
 */
export async function tailInstanceLog(
  ctx: AccContext,
  name: string,
  lines: number,
): Promise<{ text: string; size: number }> {
  await getInstance(ctx, name);
  return tailFile(instancePaths(ctx.home, name).appLog, lines);
}

/** What the app writes after `from`, chunk by chunk, until the signal aborts. */
export async function followInstanceLog(
  ctx: AccContext,
  name: string,
  from: number,
  send: (text: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const file = instancePaths(ctx.home, name).appLog;
  let offset = from;
  // Poll rather than fs.watch: supervisord rotates the file, and inotify on a renamed file goes quiet.
  while (!signal.aborted) {
    let current = 0;
    try {
      current = (await stat(file)).size;
    } catch (error) {
      if (!hasErrno(error, "ENOENT")) throw error;
    }
    if (current < offset) offset = 0;
    if (current > offset) {
      // A burst is sent in pieces of at most 1 MB: a huge log never fills the server's memory.
      const length = Math.min(current - offset, 1 << 20);
      const handle = await open(file, "r");
      try {
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, offset);
        send(buffer.subarray(0, bytesRead).toString("utf8"));
        offset += bytesRead;
      } finally {
        await handle.close();
      }
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
