import { formatDuration } from "../core/duration.js";
import type { Limits } from "../core/limits.js";
import { mayBeAlive } from "../core/states.js";
import type { AccContext } from "./context.js";
import { urlOf } from "./instances.js";
import type { InstanceRecord } from "../store/store.js";

/** The stable JSON shape of an instance for scripts. */
export interface InstanceJson {
  name: string;
  model: string;
  model_version: string;
  state: string;
  url: string;
  hosts: string[];
  port: number;
  params: Record<string, string>;
  idle_timeout: string | null;
  created_at: string;
  updated_at: string;
  state_changed_at: string;
  last_activity_at: string | null;
  last_error: string | null;
}

export function instanceJson(ctx: AccContext, instance: InstanceRecord): InstanceJson {
  return {
    name: instance.name,
    model: instance.model,
    model_version: instance.modelVersion,
    state: instance.state,
    url: urlOf(ctx, instance),
    hosts: instance.hosts,
    port: instance.port,
    params: instance.params,
    idle_timeout: instance.idleTimeout === undefined ? null : formatDuration(instance.idleTimeout),
    created_at: instance.createdAt,
    updated_at: instance.updatedAt,
    state_changed_at: instance.stateChangedAt,
    last_activity_at: instance.lastActivityAt,
    last_error: instance.lastError,
  };
}

export interface ListedInstance extends InstanceJson {
  memory_mb: number | null;
}

/** Every instance with the memory of the running ones (`acc list`). */
export async function listInstancesView(ctx: AccContext): Promise<ListedInstance[]> {
  const { runningMemory } = await import("./memory.js");
  const memory = await runningMemory(ctx);
  return (await ctx.store.listInstances()).map((i) => ({
    ...instanceJson(ctx, i),
    memory_mb: memory.has(i.name) ? Math.round(memory.get(i.name) ?? 0) : null,
  }));
}

export interface ShownInstance extends InstanceJson {
  exposed_listeners: string[] | null;
  crash_loop: { failures: number; retry_at: string | null } | null;
  last_log: string | null;
  limits: Limits & { enforced: boolean };
  memory_bytes: number | null;
  oom_kills: number;
  /** The env file's values, with secrets: only when asked. */
  env?: Record<string, string>;
}

/** One instance in full (`acc show`): state, limits, memory, why it failed, what it exposes. */
export async function showInstanceView(
  ctx: AccContext,
  name: string,
  options: { secrets: boolean },
): Promise<ShownInstance> {
  const [
    { getInstance, lastLogLines },
    { readEnvSecrets },
    { exposedListeners },
    { formatEndpoint },
    { restartCheck },
    { effectiveLimitsOf },
    { instanceCgroups },
  ] = await Promise.all([
    import("./instances.js"),
    import("./instance-secrets.js"),
    import("./bind-check.js"),
    import("./listeners.js"),
    import("./crashes.js"),
    import("./instance-settings.js"),
    import("./cgroups.js"),
  ]);
  const instance = await getInstance(ctx, name);
  const view = instanceJson(ctx, instance);
  const secrets = options.secrets ? await readEnvSecrets(ctx, name) : undefined;
  // Looked at only while it runs: null when it does not.
  const exposed =
    instance.state === "running"
      ? ((await exposedListeners(ctx, [instance])).get(name) ?? [])
      : null;
  const limits = await effectiveLimitsOf(ctx, instance);
  const cgroups = await instanceCgroups(ctx);
  const memoryBytes = await cgroups?.memoryBytes(name);
  const oomKills = cgroups ? await cgroups.oomKills(name) : 0;
  // Why it failed, without a trip to acc logs; and when, if ever, a request starts it again.
  const restart = await restartCheck(ctx, instance);
  const crashLoop = restart.allowed
    ? null
    : {
        failures: restart.failures,
        retry_at: restart.retryAt === null ? null : new Date(restart.retryAt).toISOString(),
      };
  const lastLog =
    instance.state === "failed" ? (await lastLogLines(ctx, name, 10)).trimEnd() : null;
  const data: ShownInstance = {
    ...view,
    exposed_listeners: exposed?.map(formatEndpoint) ?? null,
    crash_loop: crashLoop,
    last_log: lastLog,
    limits: { ...limits, enforced: cgroups !== undefined },
    memory_bytes: mayBeAlive(instance.state) ? (memoryBytes ?? null) : null,
    oom_kills: oomKills,
  };
  return secrets ? { ...data, env: secrets } : data;
}
