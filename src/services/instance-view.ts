import { formatDuration } from "../core/duration.js";
import type { Limits } from "../core/limits.js";
import { mayBeAlive } from "../core/states.js";
import type { AccContext } from "./context.js";
import { urlOf } from "./instances.js";
import type { InstanceQuery, InstanceSummary } from "../store/store.js";

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

export function instanceJson(ctx: AccContext, instance: InstanceSummary): InstanceJson {
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
  /** When tls is not off: what needs a look about its certificate, or null. */
  certificate_warning?: string | null;
}

export interface ListQuery extends Omit<InstanceQuery, "sort"> {
  /** name, activity (the store sorts), or memory: the largest first, none last, then by name. */
  sort?: InstanceQuery["sort"] | "memory";
}

/**
 * The instances a query asks for, with the memory of the running ones (`acc list`). The store
 * filters, sorts and pages, and only the instances of the page that may run are looked up in
 * their cgroups; sorting by memory needs every match's figure first, so it pages here.
 */
export async function listInstancesView(
  ctx: AccContext,
  query: ListQuery = {},
): Promise<ListedInstance[]> {
  const { runningMemory } = await import("./memory.js");
  const { sort, limit, offset, ...filters } = query;
  if (sort === "memory") {
    const rows = await ctx.store.listInstanceSummaries(filters);
    const memory = await runningMemory(ctx, aliveNames(rows));
    const figure = (i: InstanceSummary): number => memory.get(i.name) ?? -1;
    // Stable: equal figures (and all those without one) stay in the store's name order.
    const sorted = rows.sort((a, b) => figure(b) - figure(a));
    const start = offset ?? 0;
    const page = sorted.slice(start, limit === undefined ? undefined : start + limit);
    return withWarnings(
      ctx,
      page.map((i) => listedInstance(ctx, i, memory)),
    );
  }
  const rows = await ctx.store.listInstanceSummaries({
    ...filters,
    ...(sort !== undefined ? { sort } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(offset !== undefined ? { offset } : {}),
  });
  const memory = await runningMemory(ctx, aliveNames(rows));
  return withWarnings(
    ctx,
    rows.map((i) => listedInstance(ctx, i, memory)),
  );
}

/** When tls is not off: each row's certificate warning, from one file (acme/warnings.json). */
async function withWarnings(ctx: AccContext, rows: ListedInstance[]): Promise<ListedInstance[]> {
  if (ctx.config.tls === "off") return rows;
  const { certificateWarnings } = await import("./acme.js");
  const warnings = await certificateWarnings(ctx);
  for (const row of rows) row.certificate_warning = warnings[row.name] ?? null;
  return rows;
}

/** Those that may have a process (and so a memory figure): no other is looked up. */
function aliveNames(rows: readonly InstanceSummary[]): Set<string> {
  return new Set(rows.filter((i) => mayBeAlive(i.state)).map((i) => i.name));
}

function listedInstance(
  ctx: AccContext,
  instance: InstanceSummary,
  memory: ReadonlyMap<string, number>,
): ListedInstance {
  const mb = memory.get(instance.name);
  // Added to the object made, not spread into a copy: one object per instance of 10,000.
  const view = instanceJson(ctx, instance) as ListedInstance;
  view.memory_mb = mb === undefined ? null : Math.round(mb);
  return view;
}

export interface ShownInstance extends InstanceJson {
  exposed_listeners: string[] | null;
  crash_loop: { failures: number; retry_at: string | null } | null;
  last_log: string | null;
  limits: Limits & { enforced: boolean };
  memory_bytes: number | null;
  oom_kills: number;
  /** Its certificate (null when tls is off): where it came from, expiry, renewal, warning. */
  certificate: import("./acme.js").CertificateStatus | null;
  /**
   * Its last upgrade, while its journal is kept: from and to which version, when, and how far
   * (committed: `acc rollback` goes back to `from`; else it was interrupted: doctor rolls it back).
   */
  last_upgrade: {
    from: string;
    to: string;
    phase: string;
    finished_at: string | null;
    backup: string;
  } | null;
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
    { certificateStatus },
    { readUpgradeJournal },
  ] = await Promise.all([
    import("./instances.js"),
    import("./instance-secrets.js"),
    import("./bind-check.js"),
    import("./listeners.js"),
    import("./crashes.js"),
    import("./instance-settings.js"),
    import("./cgroups.js"),
    import("./acme.js"),
    import("./upgrade-journal.js"),
  ]);
  const instance = await getInstance(ctx, name);
  const upgrade = await readUpgradeJournal(ctx, name);
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
    certificate: ctx.config.tls === "off" ? null : await certificateStatus(ctx, instance),
    last_upgrade:
      upgrade === undefined
        ? null
        : {
            from: upgrade.from.version,
            to: upgrade.to.version,
            phase: upgrade.phase,
            finished_at: upgrade.finished_at ?? null,
            backup: upgrade.backup,
          },
  };
  return secrets ? { ...data, env: secrets } : data;
}
