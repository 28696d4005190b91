import { idleMessage } from "../core/duration.js";
// The monitor (design.md, "Idle clock"): stops running instances idle for longer than their
// idle timeout. One pass reads the store once and the activity sources once, whatever the
// number of instances; only the instances it stops cost more.
import { errorMessage, isAccError } from "../lib/errors.js";
import { holderAlive, type InstanceActivity, type InstanceRecord } from "../store/store.js";
import {
  openConnectionPorts,
  recordActivity,
  saveAccessLogPosition,
  scanAccessLog,
} from "./activity.js";
import type { AccContext } from "./context.js";
import { effectiveIdleTimeout } from "./instance-settings.js";
import { stopInstance } from "./instances.js";
import { withLease } from "./leases.js";
import { rotateNginxLogs } from "./nginx-logs.js";

export interface IdleStop {
  name: string;
  idle_ms: number;
  timeout_ms: number;
}

export interface MonitorReport {
  /** Running instances looked at. */
  checked: number;
  stopped: IdleStop[];
  /** What a pass without --dry-run would have stopped (empty otherwise). */
  would_stop: IdleStop[];
  /** nginx logs this pass rotated (acc server's passes only), when any. */
  rotated_logs?: string[];
  skipped: { name: string; reason: string }[];
  errors: { name: string; message: string }[];
  duration_ms: number;
}

export interface MonitorOptions {
  dryRun: boolean;
  /** The pass's clock; ctx.now() when not given. */
  now?: Date;
  /** Rotate nginx's logs when past nginx_log_max_mb (acc server's loop does). */
  rotateLogs?: boolean;
}

/** At most this many stops at once: each waits on supervisord, and idle instances come in bursts. */
const STOP_CONCURRENCY = 4;
/**
 * An open connection makes an instance active at every pass; storing that each time would be
 * one write per connected instance per pass, so it is stored only this often. The pass itself
 * always counts the connection.
 */
const CONNECTION_RECORD_EVERY_MS = 60_000;
/** Two monitors (acc server's loop and a cron `acc monitor`) read the access log in turn. */
const ACTIVITY_LEASE = "@access-log";
const ACTIVITY_LEASE_WAIT_MS = 30_000;

function timeOf(iso: string | null): number {
  return iso === null ? -Infinity : Date.parse(iso);
}

/** How long an instance has been idle: since its last activity or its last state change. */
export function idleMs(
  instance: Pick<InstanceRecord, "lastActivityAt" | "stateChangedAt">,
  now: number,
): number {
  return now - Math.max(timeOf(instance.lastActivityAt), timeOf(instance.stateChangedAt));
}

/** Whether an instance idle for idle ms is due to stop under timeout (null: never). */
export function isDue(idle: number, timeout: number | null): boolean {
  return timeout !== null && idle > timeout;
}

/**
 * Latest activity per instance (ms since the epoch): the stored one, the access log's, and
 * `now` for a running instance with an open connection to its port. toRecord: what moved
 * forward enough to be stored.
 */
export function mergeActivity(
  instances: readonly InstanceActivity[],
  fromLog: ReadonlyMap<string, number>,
  openPorts: ReadonlySet<number>,
  now: number,
): { latest: Map<string, number>; toRecord: Map<string, Date> } {
  const latest = new Map<string, number>();
  const toRecord = new Map<string, Date>();
  for (const instance of instances) {
    const stored = timeOf(instance.lastActivityAt);
    let at = Math.max(stored, fromLog.get(instance.name) ?? -Infinity);
    if (at > stored) toRecord.set(instance.name, new Date(at));
    // Only a running instance owns its port: a stopped one's port may be anyone's.
    if (instance.state === "running" && openPorts.has(instance.port)) {
      if (now - at >= CONNECTION_RECORD_EVERY_MS) toRecord.set(instance.name, new Date(now));
      at = now;
    }
    latest.set(instance.name, at);
  }
  return { latest, toRecord };
}

/**
 * Reads the activity since the last pass and stores it. Under a lease, so that two monitors do
 * not read the same lines and write older times over newer ones.
 */
async function refreshActivity(
  ctx: AccContext,
  instances: readonly InstanceActivity[],
  now: number,
  report: MonitorReport,
  rotateLogs: boolean,
): Promise<Map<string, number>> {
  return withLease(
    ctx.store,
    ACTIVITY_LEASE,
    "monitor",
    async () => {
      const scan = await scanAccessLog(ctx);
      const { latest, toRecord } = mergeActivity(
        instances,
        scan.seen,
        await openConnectionPorts(),
        now,
      );
      await recordActivity(ctx, toRecord, instances);
      await saveAccessLogPosition(ctx, scan.position);
      // Here, under the reader's lease and just after it saved its place: the next pass
      // finishes the renamed file from there (see rotateNginxLogs).
      if (rotateLogs) {
        try {
          const rotated = await rotateNginxLogs(ctx);
          if (rotated.length > 0) report.rotated_logs = rotated;
        } catch (error) {
          report.errors.push({ name: "nginx logs", message: `rotation: ${errorMessage(error)}` });
        }
      }
      return latest;
    },
    { waitMs: ACTIVITY_LEASE_WAIT_MS, what: "the access log reader" },
  );
}

export interface IdlePlan {
  /** Running instances looked at. */
  checked: number;
  due: IdleStop[];
  skipped: { name: string; reason: string }[];
}

/**
 * The monitor's decision, pure: which running instances are idle past their timeout. idle is
 * now - max(last activity, last state change), so a start counts as activity. Instances
 * without an entry in timeouts (it could not be read) are left alone; an instance whose
 * lease is held is skipped, being busy with another operation.
 */
export function planIdleStops(
  instances: readonly InstanceActivity[],
  input: {
    latest: ReadonlyMap<string, number>;
    timeouts: ReadonlyMap<string, number | null>;
    busy: ReadonlyMap<string, string>;
    now: number;
  },
): IdlePlan {
  const plan: IdlePlan = { checked: 0, due: [], skipped: [] };
  for (const instance of instances) {
    if (instance.state !== "running") continue;
    plan.checked++;
    const timeout = input.timeouts.get(instance.name);
    if (timeout === undefined || timeout === null) continue;
    const last = Math.max(
      input.latest.get(instance.name) ?? timeOf(instance.lastActivityAt),
      timeOf(instance.stateChangedAt),
    );
    const idle = input.now - last;
    if (!isDue(idle, timeout)) continue;
    const operation = input.busy.get(instance.name);
    if (operation !== undefined) {
      plan.skipped.push({ name: instance.name, reason: `busy: ${operation} in progress` });
      continue;
    }
    plan.due.push({ name: instance.name, idle_ms: idle, timeout_ms: timeout });
  }
  return plan;
}

/**
 * The idle timeout of each running instance; one whose model's manifest cannot be read has
 * none and an error in the report. The inherited timeout is looked up once per model version:
 * an await per instance would cost more than the rest of a 10,000-instance decision.
 */
async function idleTimeouts(
  ctx: AccContext,
  instances: readonly InstanceActivity[],
  report: MonitorReport,
): Promise<Map<string, number | null>> {
  const timeouts = new Map<string, number | null>();
  const inherited = new Map<string, { timeout: number | null } | { error: string }>();
  for (const instance of instances) {
    if (instance.state !== "running") continue;
    if (instance.idleTimeout !== undefined) {
      timeouts.set(instance.name, instance.idleTimeout);
      continue;
    }
    const key = `${instance.model}\n${instance.modelVersion}\n${instance.modelHash}`;
    let found = inherited.get(key);
    if (found === undefined) {
      try {
        found = { timeout: await effectiveIdleTimeout(ctx, instance) };
      } catch (error) {
        found = { error: errorMessage(error) };
      }
      inherited.set(key, found);
    }
    if ("error" in found) report.errors.push({ name: instance.name, message: found.error });
    else timeouts.set(instance.name, found.timeout);
  }
  return timeouts;
}

async function runLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** One monitor pass: stops (or with dryRun, lists) the running instances idle past their timeout. */
export async function monitorPass(
  ctx: AccContext,
  options: MonitorOptions,
): Promise<MonitorReport> {
  const started = performance.now();
  const now = (options.now ?? ctx.now()).getTime();
  const report: MonitorReport = {
    checked: 0,
    stopped: [],
    would_stop: [],
    skipped: [],
    errors: [],
    duration_ms: 0,
  };
  const instances = await ctx.store.listInstanceActivity();
  const latest = await refreshActivity(
    ctx,
    instances,
    now,
    report,
    options.rotateLogs === true && !options.dryRun,
  );
  const busy = new Map(
    (await ctx.store.listLeases())
      .filter((lease) => holderAlive(lease.holder))
      .map((lease) => [lease.resource, lease.operation]),
  );

  const timeouts = await idleTimeouts(ctx, instances, report);
  const plan = planIdleStops(instances, { latest, timeouts, busy, now });
  report.checked = plan.checked;
  report.skipped.push(...plan.skipped);
  const byName = new Map(plan.due.length > 0 ? instances.map((i) => [i.name, i]) : []);
  const due: (IdleStop & { inherited: number | null })[] = [];
  for (const stop of plan.due) {
    const instance = byName.get(stop.name);
    // The timeout in force when the instance's own one is cleared meanwhile (acc set ... =default).
    const inherited =
      instance === undefined || instance.idleTimeout === undefined
        ? stop.timeout_ms
        : await effectiveIdleTimeout(ctx, { ...instance, idleTimeout: undefined }).catch(
            () => null,
          );
    due.push({ ...stop, inherited });
  }

  if (options.dryRun) {
    report.would_stop = due.map(({ name, idle_ms, timeout_ms }) => ({ name, idle_ms, timeout_ms }));
  } else {
    await runLimited(due, STOP_CONCURRENCY, async (stop) => {
      const entry = { name: stop.name, idle_ms: stop.idle_ms, timeout_ms: stop.timeout_ms };
      try {
        // A request under way since the log was read holds a connection to the port.
        const port = byName.get(stop.name)?.port;
        if (port !== undefined && (await openConnectionPorts()).has(port)) {
          report.skipped.push({ name: stop.name, reason: "a connection was opened meanwhile" });
          return;
        }
        const result = await stopInstance(ctx, stop.name, {
          cause: "idle",
          message: idleMessage(entry),
          // Under the lease, from the row as it is now: a wake, a request recorded by another
          // monitor, or `acc set` since this pass read the store keeps the instance up.
          onlyIf: (current) => {
            const limit = current.idleTimeout === undefined ? stop.inherited : current.idleTimeout;
            return (
              current.state === "running" && limit !== null && isDue(idleMs(current, now), limit)
            );
          },
        });
        if (result.stopped) report.stopped.push(entry);
        else report.skipped.push({ name: stop.name, reason: `no longer idle (${result.state})` });
      } catch (error) {
        if (isAccError(error, "ACC_BUSY")) {
          report.skipped.push({ name: stop.name, reason: error.message });
        } else if (isAccError(error, "ACC_NOT_FOUND")) {
          report.skipped.push({ name: stop.name, reason: "destroyed meanwhile" });
        } else {
          report.errors.push({ name: stop.name, message: errorMessage(error) });
        }
      }
    });
    report.stopped.sort((a, b) => a.name.localeCompare(b.name));
  }
  report.duration_ms = Math.round(performance.now() - started);
  return report;
}

export interface MonitorLoopOptions {
  intervalMs: number;
  signal: AbortSignal;
  onReport?: (report: MonitorReport) => void;
  /** Where a failure is logged, one line each; stderr by default. */
  log?: (line: string) => void;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Runs a monitor pass every intervalMs until signal aborts; resolves then. A pass starts only
 * after the previous one ended, so passes never overlap however long one takes. A failed pass
 * is logged and the next one tries again.
 */
export async function startMonitorLoop(
  ctx: AccContext,
  options: MonitorLoopOptions,
): Promise<void> {
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  while (!options.signal.aborted) {
    await sleep(options.intervalMs, options.signal);
    if (options.signal.aborted) break;
    try {
      const report = await monitorPass(ctx, { dryRun: false, rotateLogs: true });
      for (const error of report.errors) {
        log(`acc monitor: ${error.name}: ${error.message.split("\n")[0] ?? ""}`);
      }
      options.onReport?.(report);
    } catch (error) {
      log(`acc monitor: pass failed: ${errorMessage(error).split("\n")[0] ?? ""}`);
    }
  }
}
