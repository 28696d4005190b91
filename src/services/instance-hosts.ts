// An instance's host names after its create: acc host add|remove. The store says which hosts
// an instance answers; nginx's files are written from it, checked by nginx -t and reloaded.
import { SETTLED_STATES } from "../core/states.js";
import { showValue, validateHostname, validateInstanceHost } from "../core/validate.js";
import { AccError } from "../lib/errors.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { getInstance, lease, recordEvent } from "./instances.js";
import { instanceManifest, siteOf } from "./model-code.js";

/** Operations that change hosts hold the instance's lease under this name (doctor reads it). */
export const HOSTS_OPERATION = "host";

/**
 * The hosts recorded, then nginx's files written from them; nginx refusing them (nginx -t, or
 * a reload that fails) puts the store and the files back as they were. A crash in between
 * leaves the lease of a dead process: doctor then writes nginx's files from the store again.
 */
async function changeHosts(
  ctx: AccContext,
  name: string,
  change: (instance: InstanceRecord) => { hosts: string[]; message: string },
  cause: string,
): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  return lease(ctx, name, HOSTS_OPERATION, async () => {
    const instance = await getInstance(ctx, name);
    if (!SETTLED_STATES.has(instance.state)) {
      throw new AccError(
        "ACC_STATE",
        `${name} is ${instance.state}: its hosts change once that is over`,
        { hint: "acc doctor explains an operation that did not finish" },
      );
    }
    const { hosts, message } = change(instance);
    const manifest = await instanceManifest(ctx, instance);
    const started = Date.now();
    await ctx.store.updateInstance(name, { hosts }, ctx.now().toISOString());
    try {
      await ctx.proxy.applySite(siteOf(ctx, { ...instance, hosts }, manifest));
    } catch (error) {
      await ctx.store.updateInstance(name, { hosts: instance.hosts }, ctx.now().toISOString());
      await recordEvent(ctx, name, HOSTS_OPERATION, "failed", {
        cause,
        durationMs: Date.now() - started,
        message: `${message}: ${error instanceof Error ? error.message : String(error)}`,
      });
      throw error;
    }
    await recordEvent(ctx, name, HOSTS_OPERATION, "ok", {
      cause,
      durationMs: Date.now() - started,
      message,
    });
    return getInstance(ctx, name);
  });
}

/** `acc host add NAME HOST`: the instance answers HOST too (its URL stays the same). */
export async function addHost(
  ctx: AccContext,
  name: string,
  host: string,
  options: { cause: string },
): Promise<InstanceRecord> {
  const wanted = validateInstanceHost(host, {
    name,
    domain: ctx.config.domain,
    adminHost: ctx.config.admin_host,
  });
  const owner = await ctx.store.hostOwner(wanted);
  if (owner !== undefined) {
    throw new AccError(
      "ACC_CONFLICT",
      owner === name
        ? `${name} already answers ${wanted}`
        : `host ${wanted} is already used by instance ${owner}`,
      { hint: `acc show ${owner} lists its hosts` },
    );
  }
  return changeHosts(
    ctx,
    name,
    (instance) => ({ hosts: [...instance.hosts, wanted], message: `added host ${wanted}` }),
    options.cause,
  );
}

/** `acc host remove NAME HOST`: nginx no longer sends HOST to it. Its URL's host stays. */
export async function removeHost(
  ctx: AccContext,
  name: string,
  host: string,
  options: { cause: string },
): Promise<InstanceRecord> {
  const lower = validateHostname(host);
  return changeHosts(
    ctx,
    name,
    (instance) => {
      if (!instance.hosts.includes(lower)) {
        throw new AccError("ACC_NOT_FOUND", `${name} has no host ${showValue(host)}`, {
          hint: `its hosts: ${instance.hosts.join(", ")}`,
        });
      }
      if (instance.hosts[0] === lower) {
        throw new AccError(
          "ACC_INVALID",
          `${lower} is the host of ${name}'s URL (ACC_URL, given to its app): it stays`,
          { hint: "only the hosts added after it can be removed" },
        );
      }
      return {
        hosts: instance.hosts.filter((h) => h !== lower),
        message: `removed host ${lower}`,
      };
    },
    options.cause,
  );
}

/** doctor: a host change killed half-way is finished from the store (nginx's files again). */
export async function rewriteSite(ctx: AccContext, name: string): Promise<void> {
  const instance = await ctx.store.getInstance(name);
  if (!instance) return;
  await ctx.proxy.applySite(siteOf(ctx, instance, await instanceManifest(ctx, instance)));
}
