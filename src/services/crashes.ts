// Exits of instances' processes that acc did not ask for, and the crash-loop rule that every
// start obeys (core/crash-loop.ts holds the schedule; this reads the store for it).
import {
  FIRST_RETRY_DELAY_MS,
  describeRefusal,
  eventsToRead,
  isExplicitStart,
  restartDecision,
  type CrashPolicy,
  type RestartDecision,
} from "../core/crash-loop.js";
import { formatDuration } from "../core/duration.js";
import type { ProgramState } from "../drivers/supervisord/index.js";
import { AccError } from "../lib/errors.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { withLease } from "./leases.js";
import { oomKills, stopProcesses } from "./cgroups.js";
import { holdPort } from "./ports.js";

export type ExitCause = "exit" | "signal" | "oom";

export interface ExitVerdict {
  cause: ExitCause;
  /** For the event and `acc show`: "exited with status 1", "killed by SIGKILL". */
  description: string;
}

const SIGNALS: Record<number, string> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  11: "SIGSEGV",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
};

/**
 * Why the instance's process ended: the one place that decides it. supervisord gives -1 for a
 * death by signal (it keeps no signal number); bubblewrap and shells report a child killed by
 * signal N as status 128+N. An OOM kill looks like SIGKILL: the cgroup's oom_kill counter,
 * when there is one, is what tells them apart (plug it in here).
 */
export function decideExitCause(
  program: Pick<ProgramState, "exitStatus"> | null,
  evidence: { oomKilled?: boolean } = {},
): ExitVerdict {
  if (evidence.oomKilled === true) {
    return { cause: "oom", description: "killed by the kernel: out of memory (its memory limit)" };
  }
  const status = program?.exitStatus;
  if (status === undefined) return { cause: "exit", description: "exited" };
  if (status < 0) return { cause: "signal", description: "killed by a signal" };
  const signal = status > 128 ? SIGNALS[status - 128] : undefined;
  if (signal !== undefined) {
    return { cause: "signal", description: `killed by ${signal} (exit status ${status})` };
  }
  return { cause: "exit", description: `exited with status ${status}` };
}

export function crashPolicy(ctx: AccContext): CrashPolicy {
  return {
    retries: ctx.config.crash_retries,
    firstDelayMs: FIRST_RETRY_DELAY_MS,
    maxDelayMs: ctx.config.crash_backoff_max,
    resetAfterMs: ctx.config.crash_reset_after,
  };
}

/**
 * Whether an automatic start may run now. Only a failed instance can be in a series of
 * failures (a crash or a failed start leaves it failed), so no other state costs a read.
 */
export async function restartCheck(
  ctx: AccContext,
  instance: Pick<InstanceRecord, "name" | "state">,
): Promise<RestartDecision> {
  if (instance.state !== "failed") return { allowed: true, failures: 0 };
  const policy = crashPolicy(ctx);
  const events = await ctx.store.listEvents({
    instance: instance.name,
    limit: eventsToRead(policy),
  });
  return restartDecision(events.reverse(), ctx.now().getTime(), policy);
}

/**
 * The rule every start obeys, under the instance's lease: an automatic start (a wake, an
 * eviction's) of an instance in a crash loop waits out its backoff, and none comes after
 * crash_retries failures in a row. A start the sysadmin asks for (acc start, restart, create,
 * restore) always runs, and its event begins a new series.
 */
export async function assertMayStart(
  ctx: AccContext,
  instance: InstanceRecord,
  cause: string,
): Promise<void> {
  const decision = await restartCheck(ctx, instance);
  if (decision.allowed) return;
  if (isExplicitStart(cause)) {
    ctx.progress.step(
      `${instance.name} failed ${decision.failures} times in a row: starting it anyway, which resets the count`,
    );
    return;
  }
  throw new AccError(
    "ACC_START_FAILED",
    `${instance.name} is not started: ${describeRefusal(decision, ctx.now().getTime())}`,
    { hint: `acc logs ${instance.name} shows why; acc start ${instance.name} tries again now` },
  );
}

/**
 * Records an exit acc did not ask for, under the instance's lease: state failed, an event
 * with the exit status or signal and how long it ran. Any process left is stopped and the
 * port held again, as after a stop.
 */
export async function recordCrashLocked(
  ctx: AccContext,
  instance: InstanceRecord,
  program: ProgramState | null,
): Promise<void> {
  const ranMs = ctx.now().getTime() - Date.parse(instance.stateChangedAt);
  // The cgroup's oom_kill counter starts from 0 at each start: above 0, the kernel killed it.
  const verdict = decideExitCause(program, { oomKilled: (await oomKills(ctx, instance.name)) > 0 });
  // Recorded first, the clean-up after: the crash is known the moment it can be.
  await ctx.store.updateInstance(
    instance.name,
    { state: "failed", operation: null, lastError: verdict.description },
    ctx.now().toISOString(),
  );
  instance.state = "failed";
  instance.lastError = verdict.description;
  await ctx.store.addEvent(
    {
      instance: instance.name,
      action: "crash",
      outcome: "failed",
      cause: verdict.cause,
      durationMs: null,
      message: `${verdict.description} after ${formatDuration(Math.max(0, ranMs))} running`,
    },
    ctx.now().toISOString(),
  );
  await stopProcesses(ctx, instance.name);
  await holdPort(ctx, instance.port);
}

/** Whether supervisord holds a live process for the program. */
export function programAlive(program: ProgramState | null): boolean {
  return program !== null && (program.state === "RUNNING" || program.state === "STARTING");
}

/**
 * What the exit listener does with the exit of an instance's process. An exit is a crash when
 * the store says running and no process of the program runs: a stop sets `stopping` before it
 * signals, a start that fails records that itself (state `starting` until it ends), and the
 * lease makes this wait for either to finish. "ignored": acc's own stop, or an older process.
 */
export async function handleProgramExit(
  ctx: AccContext,
  name: string,
): Promise<"crash" | "ignored"> {
  // Most exits are acc's own stops (`stopping` by now): those are known without the lease, so
  // the listener never makes the next wake wait for it.
  const seen = await ctx.store.getInstance(name);
  if (seen?.state !== "running" && seen?.state !== "starting") return "ignored";
  return withLease(
    ctx.store,
    name,
    "crash",
    async () => {
      const instance = await ctx.store.getInstance(name);
      if (instance?.state !== "running") return "ignored";
      const program = await ctx.processes.programState(name);
      if (programAlive(program)) return "ignored";
      await recordCrashLocked(ctx, instance, program);
      return "crash";
    },
    // A start or stop under way holds the lease for up to its timeouts.
    { waitMs: 15 * 60_000, what: `instance ${name}` },
  );
}

/** Under the lease: a `running` instance whose process is gone is recorded as crashed. */
export async function handleDeadRunning(ctx: AccContext, instance: InstanceRecord): Promise<void> {
  const program = await ctx.processes.programState(instance.name);
  if (!programAlive(program)) await recordCrashLocked(ctx, instance, program);
}
