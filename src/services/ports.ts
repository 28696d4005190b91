// Instances' ports and acc-ports, the keeper that holds them while their instances do not run
// (design.md, "Users and privileges": no other local user can take an instance's port).
import { AccError } from "../lib/errors.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";

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

/** Holds the port of every instance that is not running (after boot, or a keeper restart). */
export async function holdIdlePorts(
  ctx: AccContext,
  instances: readonly InstanceRecord[],
): Promise<number[]> {
  const taken: number[] = [];
  for (const instance of instances) {
    if (instance.state === "running" || instance.state === "starting") continue;
    if ((await ctx.ports.hold(instance.port)) === "in-use") taken.push(instance.port);
  }
  return taken;
}
