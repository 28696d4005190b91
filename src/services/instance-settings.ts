// An instance's own settings: its idle timeout and its limits (acc set), and those in force.
import { formatDuration } from "../core/duration.js";
import { formatLimit, type LimitKey, type Limits } from "../core/limits.js";
import { mayBeAlive } from "../core/states.js";
import { AccError } from "../lib/errors.js";
import type { Settings } from "../core/settings.js";
import type { InstanceLimits, InstanceRecord } from "../store/store.js";
import { instanceCgroups, limitsOf } from "./cgroups.js";
import type { AccContext } from "./context.js";
import { causeOf, getInstance, lease, recordEvent } from "./instances.js";
import { instanceManifest } from "./model-code.js";

/** Sets the instance's own idle timeout: ms, null for never, undefined to inherit again. */
export async function setIdleTimeout(
  ctx: AccContext,
  name: string,
  idleTimeout: number | null | undefined,
): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  return lease(ctx, name, "set", async () => {
    await ctx.store.updateInstance(name, { idleTimeout }, ctx.now().toISOString());
    await recordEvent(ctx, name, "set", "ok", {
      cause: causeOf(ctx),
      message: `idle-timeout=${idleTimeout === undefined ? "default" : formatDuration(idleTimeout)}`,
    });
    return getInstance(ctx, name);
  });
}

/** The limits in force for an instance (its own, else its model's, else acc.toml's). */
export async function effectiveLimitsOf(
  ctx: AccContext,
  instance: InstanceRecord,
): Promise<Limits> {
  return limitsOf(ctx, instance, await instanceManifest(ctx, instance));
}

/**
 * Changes the instance's own limits (a value, null for none, undefined to inherit again); a
 * running instance gets them at once, before they are recorded: a limit the kernel refuses
 * (memory below what it uses now, on cgroup v1) changes nothing.
 */
export async function setLimits(
  ctx: AccContext,
  name: string,
  changes: Partial<Record<LimitKey, number | null | undefined>>,
): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  return lease(ctx, name, "set", async () => {
    const instance = await getInstance(ctx, name);
    const own: InstanceLimits = { ...(instance.limits ?? {}) };
    for (const [key, value] of Object.entries(changes) as [LimitKey, number | null | undefined][]) {
      if (value === undefined) delete own[key];
      else own[key] = value;
    }
    const updated = { ...instance, limits: own };
    const cgroups = await instanceCgroups(ctx);
    if (cgroups && mayBeAlive(instance.state) && (await cgroups.pids(name)).length > 0) {
      const manifest = await instanceManifest(ctx, instance);
      try {
        await cgroups.applyLimits(name, limitsOf(ctx, updated, manifest));
      } catch (error) {
        if (!(error instanceof Error && "code" in error)) throw error;
        await cgroups.applyLimits(name, limitsOf(ctx, instance, manifest));
        throw new AccError(
          "ACC_FAILED",
          `the kernel refused the limits of ${name}: ${error.message}`,
          {
            cause: error,
            hint: "a memory limit below what the instance uses now is refused while it runs: stop it first",
          },
        );
      }
    }
    await ctx.store.updateInstance(name, { limits: own }, ctx.now().toISOString());
    await recordEvent(ctx, name, "set", "ok", {
      cause: causeOf(ctx),
      message: (Object.keys(changes) as LimitKey[])
        .map((key) => `${key}=${key in own ? formatLimit(key, own[key]) : "default"}`)
        .join(" "),
    });
    return getInstance(ctx, name);
  });
}

/** The idle timeout in force: the instance's own, else its model's, else the config's; null is never. */
export async function effectiveIdleTimeout(
  ctx: AccContext,
  instance: Pick<InstanceRecord, "idleTimeout" | "model" | "modelVersion" | "modelHash">,
): Promise<number | null> {
  if (instance.idleTimeout !== undefined) return instance.idleTimeout;
  const manifest = await instanceManifest(ctx, instance);
  return manifest.idle_timeout !== undefined ? manifest.idle_timeout : ctx.config.idle_timeout;
}

/** `acc set`: the settings applied in order, each said as NAME: key=effective value. */
export async function applySettings(
  ctx: AccContext,
  name: string,
  settings: Settings,
): Promise<{ instance: InstanceRecord; changed: string[] }> {
  let instance = await getInstance(ctx, name);
  const changed: string[] = [];
  if (settings.idleTimeout) {
    instance = await setIdleTimeout(ctx, name, settings.idleTimeout.value);
    const effective = formatDuration(await effectiveIdleTimeout(ctx, instance));
    changed.push(
      settings.idleTimeout.value === undefined
        ? `${name}: idle-timeout=default (${effective})`
        : `${name}: idle-timeout=${effective}`,
    );
  }
  if (settings.limits) {
    instance = await setLimits(ctx, name, settings.limits);
    const limits = await effectiveLimitsOf(ctx, instance);
    for (const key of Object.keys(settings.limits) as LimitKey[])
      changed.push(`${name}: ${key}=${formatLimit(key, limits[key])}`);
  }
  return { instance, changed };
}
