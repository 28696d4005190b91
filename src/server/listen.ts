import { once } from "node:events";
import { chmod, chown, lstat, rm } from "node:fs/promises";
import type { Server } from "node:net";
import path from "node:path";

/**
 * Listens on a unix socket that only the owner of its folder and the folder's group can open:
 * the socket gets mode 0660 and the folder's group (nginx's workers for the waker). The folder
 * (root's, 0750) is what keeps everyone else out, even during the moment before the chmod.
 */
export async function listenOnSocket(
  server: Server,
  socketPath: string,
  backlog: number,
  /** 0o600: the owner alone (the local API); 0o660 by default: the folder's group too. */
  mode = 0o660,
): Promise<void> {
  const folder = await lstat(path.dirname(socketPath));
  // A socket left by a server that was killed would make listen fail with EADDRINUSE.
  await rm(socketPath, { force: true });
  server.listen({ path: socketPath, backlog });
  await once(server, "listening");
  await chmod(socketPath, mode);
  if (process.getuid?.() === 0) await chown(socketPath, 0, folder.gid);
}
