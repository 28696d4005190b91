// The one rule for restarting an instance that keeps failing: every path that can start one
// (a wake by any request, the CLI, the monitor, an eviction's wake) asks restartDecision.

/** The events the rule reads, as the store keeps them (newest last or first: see below). */
export interface LifeEvent {
  time: string;
  action: string;
  outcome: string;
  cause: string | null;
}

export interface CrashPolicy {
  /** After this many failures in a row the instance stays failed until the sysadmin starts it. */
  retries: number;
  /** Pause after the first failure; it doubles with each further one. */
  firstDelayMs: number;
  maxDelayMs: number;
  /** A run at least this long ends the series: the next failure counts as the first. */
  resetAfterMs: number;
}

export const FIRST_RETRY_DELAY_MS = 1_000;

/**
 * Starts the sysadmin asked for: they are always let through and begin a new series (an
 * upgrade's start checks the new version, a rollback's brings the old one back).
 */
const EXPLICIT_CAUSES = new Set(["cli", "create", "restore", "upgrade", "rollback"]);

export function isExplicitStart(cause: string | null): boolean {
  return EXPLICIT_CAUSES.has(cause ?? "");
}

export type RestartDecision =
  | { allowed: true; failures: number }
  | {
      allowed: false;
      failures: number;
      /** When an automatic start may try again; null: not before the sysadmin starts it. */
      retryAt: number | null;
      lastFailureAt: number;
    };

function isFailure(event: LifeEvent): boolean {
  return event.action === "crash" || (event.action === "start" && event.outcome === "failed");
}

/**
 * Failures in a row, newest first, up to the start that began the series: a start the sysadmin
 * asked for, a stop acc made (the app was not crashing then), or a run of resetAfterMs or more.
 */
export function failureSeries(
  newestFirst: readonly LifeEvent[],
  policy: Pick<CrashPolicy, "resetAfterMs">,
): number[] {
  const failures: number[] = [];
  for (const event of newestFirst) {
    const time = Date.parse(event.time);
    if (isFailure(event)) {
      failures.push(time);
      if (event.action === "start" && isExplicitStart(event.cause)) break;
      continue;
    }
    if (event.action === "stop" || event.action === "resume" || event.action === "create") break;
    if (event.action === "start" && event.outcome === "ok") {
      if (isExplicitStart(event.cause)) break;
      const endedAt = failures.at(-1);
      if (endedAt !== undefined && endedAt - time >= policy.resetAfterMs) break;
    }
  }
  return failures;
}

/** The pause before the next automatic start after `failures` failures in a row. */
export function retryDelay(failures: number, policy: CrashPolicy): number {
  if (failures <= 0) return 0;
  const exponent = Math.min(failures - 1, 40);
  return Math.min(policy.firstDelayMs * 2 ** exponent, policy.maxDelayMs);
}

/** Whether an automatic start may run now, given the instance's events (newest first). */
export function restartDecision(
  newestFirst: readonly LifeEvent[],
  now: number,
  policy: CrashPolicy,
): RestartDecision {
  const series = failureSeries(newestFirst, policy);
  const failures = series.length;
  const lastFailureAt = series[0];
  if (lastFailureAt === undefined) return { allowed: true, failures: 0 };
  if (failures >= policy.retries) return { allowed: false, failures, retryAt: null, lastFailureAt };
  const retryAt = lastFailureAt + retryDelay(failures, policy);
  return now >= retryAt
    ? { allowed: true, failures }
    : { allowed: false, failures, retryAt, lastFailureAt };
}

/** How many events restartDecision needs to see, at most, for a policy. */
export function eventsToRead(policy: CrashPolicy): number {
  // Each failure may come with its start event, plus events the rule skips (warnings).
  return policy.retries * 3 + 10;
}

/** What a refused automatic start says, for the failed page and the CLI. */
export function describeRefusal(
  decision: Extract<RestartDecision, { allowed: false }>,
  now: number,
): string {
  if (decision.retryAt === null) {
    return `it failed ${decision.failures} times in a row and is not started again automatically`;
  }
  const seconds = Math.max(1, Math.ceil((decision.retryAt - now) / 1000));
  return `it failed ${decision.failures} time${decision.failures === 1 ? "" : "s"} in a row; next try in ${seconds} s`;
}
