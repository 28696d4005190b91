// Instances' ports and acc-ports, the keeper that holds them from create to destroy (design.md,
// "Users and privileges": no other local user can take an instance's port).
import type { ModelManifest } from "../core/model.js";
import { AccError } from "../lib/errors.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { instanceManifest } from "./model-code.js";
import { describePortHolders, portHolders, readListeners, type TcpSocket } from "./listeners.js";
import { instanceUserName, userNamesOf } from "./users.js";

/**
 * Asks acc-ports to hold the instance's port. Returns false when another program has bound
 * it (acc-ports keeps trying); quiet when acc is not booted: boot holds every port.
 */
export async function holdPort(ctx: AccContext, port: number): Promise<boolean> {
  try {
    return (await ctx.ports.hold(port)) !== "in-use";
  } catch (error) {
    if (error instanceof AccError && error.code === "ACC_NOT_BOOTED") return true;
    throw error;
  }
}

/** Lets the port of a destroyed instance go; quiet when acc is not booted. */
export async function releasePort(ctx: AccContext, port: number): Promise<void> {
  try {
    await ctx.ports.release(port);
  } catch (error) {
    if (!(error instanceof AccError && error.code === "ACC_NOT_BOOTED")) throw error;
  }
}

/**
 * Holds every instance's port (after boot, or a keeper restart), but that of a running app that
 * bound its port itself: its own socket holds it meanwhile, and acc-ports gets it at its stop.
 * A socket-activated app's socket shares the port with acc-ports'. Returns the ports another
 * program has.
 */
export async function holdPorts(
  ctx: AccContext,
  instances: readonly InstanceRecord[],
): Promise<number[]> {
  const taken: number[] = [];
  for (const instance of instances) {
    const up = instance.state === "running" || instance.state === "starting";
    if (up && !(await instanceManifest(ctx, instance)).socket_activation) continue;
    if ((await ctx.ports.hold(instance.port)) === "in-use") taken.push(instance.port);
  }
  return taken;
}

/**
 * The instances whose port another program listens on, each with that program named in one
 * line. A socket is the instance's when its owner is the instance's user (root homes) or acc's
 * own user, which runs acc-ports and, in other homes, the instances too. /proc is read once.
 */
export async function portIntruders(
  ctx: Pick<AccContext, "isRoot">,
  instances: readonly Pick<InstanceRecord, "name" | "port">[],
  /** The listening sockets, when the caller has just read them. */
  listening?: readonly TcpSocket[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const own = process.getuid?.() ?? 0;
  const byPort = new Map(instances.map((i) => [i.port, i]));
  const foreign = (listening ?? (await readListeners())).filter(
    (l) => l.uid !== own && byPort.has(l.port),
  );
  if (foreign.length === 0) return found;
  const names = await userNamesOf(foreign.map((l) => l.uid));
  for (const port of new Set(foreign.map((l) => l.port))) {
    const instance = byPort.get(port);
    if (instance === undefined) continue;
    const user = instanceUserName(instance.name);
    const intruding = foreign.filter(
      (l) => l.port === port && !(ctx.isRoot && names.get(l.uid) === user),
    );
    if (intruding.length === 0) continue;
    const inodes = new Set(intruding.map((l) => l.inode));
    const holders = (await portHolders(port)).filter((l) => inodes.has(l.inode));
    found.set(instance.name, describePortHolders(port, holders));
  }
  return found;
}

/** Who else than the instance listens on its port, in one line; undefined when nobody. */
export async function portIntruder(
  ctx: Pick<AccContext, "isRoot">,
  instance: Pick<InstanceRecord, "name" | "port">,
): Promise<string | undefined> {
  return (await portIntruders(ctx, [instance])).get(instance.name);
}

/**
 * After a start passed its health check: the app that answered must be the instance's. With
 * socket activation it is by construction (acc-ports never let the port go); an app that binds
 * its port itself did so after acc-ports let it go, and another user may have been faster.
 */
export async function checkPortOwner(
  ctx: AccContext,
  instance: InstanceRecord,
  manifest: ModelManifest,
  listening?: readonly TcpSocket[],
): Promise<void> {
  if (manifest.socket_activation) return;
  const intruder = (await portIntruders(ctx, [instance], listening)).get(instance.name);
  if (intruder !== undefined) {
    throw new AccError(
      "ACC_START_FAILED",
      `${intruder}, not by ${instance.name}: no request is passed to it`,
      {
        hint: "that program took the port while the instance started; stop it (acc never kills a process it did not start)",
      },
    );
  }
}
