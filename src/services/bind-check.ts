import { describeExposedEndpoints } from "../core/exposure.js";
// Instances listen on 127.0.0.1 only: nginx is their one way in (host routing, the waker, the
// idle clock). An app that listens on 0.0.0.0, :: or a public address is reachable from other
// hosts without any of that, so acc says so, and refuses the start when the model asks it to.
import type { ModelManifest } from "../core/model.js";
import { AccError, isAccError } from "../lib/errors.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import {
  formatEndpoint,
  isLoopbackAddress,
  readListeners,
  socketOwners,
  type TcpSocket,
} from "./listeners.js";
import { instanceUserName, userNamesOf } from "./users.js";
import { processTrees } from "../lib/processes.js";

/**
 * The listening sockets of these instances that other hosts can reach, by instance name (only
 * instances that have some). Whose socket it is:
 * - root homes: each instance runs as its own user, so a socket is the instance's when its
 *   owner (the uid in /proc/net/tcp) is the instance's user. This catches every process of the
 *   instance, one that left supervisord's process tree too, and reads no process's fds.
 * - other homes: every instance runs as acc's own user, like acc's nginx (on 0.0.0.0), so the
 *   uid tells nothing; a socket is the instance's when a process of its supervisord program's
 *   tree holds it. A process that left that tree (forked twice) is not found.
 * Loopback listeners, the common case, cost one read of /proc/net/tcp{,6} and nothing more.
 */
export async function exposedListeners(
  ctx: Pick<AccContext, "isRoot" | "processes">,
  instances: readonly Pick<InstanceRecord, "name">[],
  /** The listening sockets, when the caller has just read them. */
  listening?: readonly TcpSocket[],
): Promise<Map<string, TcpSocket[]>> {
  const found = new Map<string, TcpSocket[]>();
  const add = (name: string, socket: TcpSocket): void => {
    const list = found.get(name);
    if (list) list.push(socket);
    else found.set(name, [socket]);
  };
  if (instances.length === 0) return found;
  const exposed = (listening ?? (await readListeners())).filter(
    (l) => !isLoopbackAddress(l.address),
  );
  if (exposed.length === 0) return found;

  if (ctx.isRoot) {
    const names = await userNamesOf(exposed.map((l) => l.uid));
    const byUser = new Map(instances.map((i) => [instanceUserName(i.name), i.name]));
    for (const socket of exposed) {
      const user = names.get(socket.uid);
      const name = user === undefined ? undefined : byUser.get(user);
      if (name !== undefined) add(name, socket);
    }
    return sorted(found);
  }

  const roots = await programPids(ctx, instances);
  if (roots.size === 0) return found;
  const trees = await processTrees([...roots.keys()]);
  const instanceOf = new Map<number, string>();
  for (const [root, pids] of trees) {
    const name = roots.get(root);
    if (name !== undefined) for (const pid of pids) instanceOf.set(pid, name);
  }
  const owners = await socketOwners(
    exposed.map((l) => l.inode),
    { pids: instanceOf.keys() },
  );
  const byInode = new Map(exposed.map((l) => [l.inode, l]));
  const seen = new Set<string>();
  for (const owner of owners) {
    const name = instanceOf.get(owner.pid);
    const socket = byInode.get(owner.inode);
    // Forked workers share one socket: it is listed once.
    if (name === undefined || socket === undefined || seen.has(`${name} ${owner.inode}`)) continue;
    seen.add(`${name} ${owner.inode}`);
    add(name, socket);
  }
  return sorted(found);
}

function sorted(found: Map<string, TcpSocket[]>): Map<string, TcpSocket[]> {
  for (const sockets of found.values()) {
    sockets.sort((a, b) => a.port - b.port || a.family.localeCompare(b.family));
  }
  return found;
}

/** The pid supervisord runs each instance's program as, for those that have one now. */
async function programPids(
  ctx: Pick<AccContext, "processes">,
  instances: readonly Pick<InstanceRecord, "name">[],
): Promise<Map<number, string>> {
  const pids = new Map<number, string>();
  try {
    if (instances.length === 1 && instances[0] !== undefined) {
      const state = await ctx.processes.programState(instances[0].name);
      if (state && state.pid > 0) pids.set(state.pid, instances[0].name);
      return pids;
    }
    const wanted = new Set(instances.map((i) => i.name));
    for (const [name, state] of await ctx.processes.allProgramStates()) {
      if (wanted.has(name) && state.pid > 0) pids.set(state.pid, name);
    }
  } catch (error) {
    // supervisord down: none of its programs runs.
    if (!isAccError(error, "ACC_NOT_BOOTED")) throw error;
  }
  return pids;
}

/** "0.0.0.0:20001, [::]:9229". */
export function describeEndpoints(sockets: readonly TcpSocket[]): string {
  return sockets.map(formatEndpoint).join(", ");
}

/** What is wrong, in words: "listens on 0.0.0.0:20001, beyond 127.0.0.1: ...". */
export function describeExposed(sockets: readonly TcpSocket[]): string {
  return describeExposedEndpoints(sockets.map(formatEndpoint));
}

/**
 * Called once a start passed its health check: when the instance listens on an address beyond
 * loopback, records a `listen` event saying where (outcome `warning`), and with the model's
 * `strict_bind = true` (outcome `failed`) throws ACC_START_FAILED, for the start to be undone.
 */
export async function checkBindAddresses(
  ctx: AccContext,
  instance: InstanceRecord,
  manifest: ModelManifest,
  listening?: readonly TcpSocket[],
): Promise<void> {
  const exposed = (await exposedListeners(ctx, [instance], listening)).get(instance.name);
  if (exposed === undefined) return;
  const where = describeEndpoints(exposed);
  const strict = manifest.strict_bind === true;
  const problem = describeExposed(exposed);
  await ctx.store.addEvent(
    {
      instance: instance.name,
      action: "listen",
      outcome: strict ? "failed" : "warning",
      cause: "start",
      durationMs: null,
      message: strict ? `${problem}; the model sets strict_bind = true` : problem,
    },
    ctx.now().toISOString(),
  );
  if (strict) {
    // startLocked stops the instance, marks it failed and names this reason.
    throw new AccError(
      "ACC_START_FAILED",
      `it listens on ${where}, beyond 127.0.0.1 (other hosts reach it without nginx), and its model sets strict_bind = true`,
    );
  }
}
