// Whether instances run in their own cgroups here (HOME/run/cgroups.json, found at boot), and
// what starts, stops, limits and doctor do with them. The boundary itself is drivers/cgroups.
import { createHash } from "node:crypto";
import path from "node:path";
import { configLimits } from "../core/config.js";
import { effectiveLimits, type Limits } from "../core/limits.js";
import type { ModelManifest } from "../core/model.js";
import {
  createCgroups,
  planLayout,
  readHostCgroups,
  setUpLayout,
  type CgroupLayout,
  type Cgroups,
} from "../drivers/cgroups/index.js";
import { hasErrno } from "../lib/errors.js";
import { readFileIfExists, writeFileAtomic } from "../lib/files.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";

export interface CgroupsState {
  /** Each instance runs in its own cgroup. */
  enabled: boolean;
  /** Why not, when they do not. */
  reason?: string;
  /** acc.toml's `cgroups` when this was found: a change makes acc look again. */
  config: "auto" | "off";
  layout?: CgroupLayout;
}

function stateFile(ctx: AccContext): string {
  return path.join(ctx.paths.run, "cgroups.json");
}

/** acc's group name for this home: two homes on one machine never share one. */
export function homeGroupName(home: string): string {
  return `acc-${createHash("sha256").update(home).digest("hex").slice(0, 12)}`;
}

/**
 * Finds where this home's instances' cgroups go and makes acc's groups there (boot runs it,
 * from the cgroup acc's supervisord will run in). `keep`: a layout found before is kept (acc's
 * supervisord runs, its instances may be in it); boot's migration rewrites launch specs that
 * name another.
 */
export async function probeCgroups(
  ctx: AccContext,
  options: { keep?: boolean } = {},
): Promise<CgroupsState> {
  const config = ctx.config.cgroups;
  let state: CgroupsState;
  const previous = await readState(ctx);
  if (config === "off") {
    state = { enabled: false, reason: "cgroups = off in acc.toml", config };
  } else {
    const layout =
      options.keep && previous?.enabled && previous.layout && previous.config === config
        ? previous.layout
        : planLayout(await readHostCgroups(), homeGroupName(ctx.home));
    if (!layout) {
      state = { enabled: false, reason: "this system has no cgroup filesystem", config };
    } else {
      try {
        await setUpLayout(layout);
        state = { enabled: true, config, layout };
      } catch (error) {
        // Any refusal of the kernel (a controller it will not enable, a read-only mount, no
        // right to the folder) means no cgroups here, said by boot and status; not a failed boot.
        if (!(error instanceof Error && "code" in error)) throw error;
        state = {
          enabled: false,
          reason:
            ctx.isRoot || !(hasErrno(error, "EACCES") || hasErrno(error, "EPERM"))
              ? `cannot make cgroups here: ${error.message}`
              : `not root, and acc's cgroup is not delegated to ${process.env.USER ?? "this user"}`,
          config,
        };
      }
    }
  }
  await writeFileAtomic(stateFile(ctx), `${JSON.stringify(state)}\n`, { mode: 0o600 });
  ctx.cache.cgroups = Promise.resolve(state);
  return state;
}

async function readState(ctx: AccContext): Promise<CgroupsState | undefined> {
  const text = await readFileIfExists(stateFile(ctx));
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as CgroupsState;
  } catch (error) {
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

/** The recorded answer of probeCgroups, probing when there is none (or acc.toml changed). */
export async function cgroupsState(ctx: AccContext): Promise<CgroupsState> {
  ctx.cache.cgroups ??= (async () => {
    const saved = await readState(ctx);
    if (saved && saved.config === ctx.config.cgroups) return saved;
    // One command run with ACC_CGROUPS=off does without, and leaves the home's record alone.
    if (ctx.config.cgroups === "off")
      return { enabled: false, reason: "cgroups = off", config: "off" };
    return probeCgroups(ctx);
  })();
  return ctx.cache.cgroups;
}

/** The instances' cgroups, or undefined when they run without (cgroups = off, not allowed). */
export async function instanceCgroups(ctx: AccContext): Promise<Cgroups | undefined> {
  const state = await cgroupsState(ctx);
  return state.enabled && state.layout ? createCgroups(state.layout) : undefined;
}

/** The limits in force for an instance: its own, else its model's, else acc.toml's. */
export function limitsOf(
  ctx: AccContext,
  instance: InstanceRecord,
  manifest: ModelManifest,
): Limits {
  return effectiveLimits(configLimits(ctx.config), manifest.limits, instance.limits ?? {});
}

/**
 * Readies the instance's cgroup for a start (or its setup step): made when missing, whatever an
 * earlier run left in it (a detached child of a crashed app, holding its port) killed, limits as
 * they are now.
 */
export async function prepareCgroup(
  ctx: AccContext,
  instance: InstanceRecord,
  manifest: ModelManifest,
): Promise<void> {
  const cgroups = await instanceCgroups(ctx);
  if (!cgroups) return;
  await cgroups.prepare(instance.name, limitsOf(ctx, instance, manifest));
}

/** Kills what is left in the instance's cgroup; true when something was. */
export async function killCgroup(ctx: AccContext, name: string): Promise<boolean> {
  const cgroups = await instanceCgroups(ctx);
  return cgroups ? cgroups.killAll(name) : false;
}

/** Empties and removes the instance's cgroup (destroy). */
export async function removeCgroup(ctx: AccContext, name: string): Promise<void> {
  await (await instanceCgroups(ctx))?.remove(name);
}

/**
 * How many processes of the instance the kernel's OOM killer killed since its last start (each
 * start counts from 0 again): an exit with a count above 0 is an `oom` crash. 0 without cgroups.
 */
export async function oomKills(ctx: AccContext, name: string): Promise<number> {
  return (await (await instanceCgroups(ctx))?.oomKills(name)) ?? 0;
}

/**
 * Stops every process of an instance: SIGTERM to all of its cgroup (the app, its workers, its
 * detached children), the stop timeout for them to end, then SIGKILL to what is left, until the
 * cgroup is empty. `killed`: something had to be killed.
 */
export async function stopProcesses(
  ctx: AccContext,
  name: string,
  options: { unload?: boolean } = {},
): Promise<{ killed: boolean }> {
  const cgroups = await instanceCgroups(ctx);
  const result = await ctx.processes.stopProgram(name, {
    ...options,
    ...(cgroups ? { members: () => cgroups.pids(name) } : {}),
  });
  const leftovers = cgroups ? await cgroups.killAll(name) : false;
  return { killed: result.killed || leftovers };
}
