import { AccError } from "../lib/errors.js";
import { trace } from "../lib/trace.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { assertMayStart, handleDeadRunning } from "./crashes.js";
import { probeHealth } from "./health.js";
import { getInstance, startLocked, stopInstance } from "./instances.js";
import { instanceManifest } from "./model-code.js";
import { withLease } from "./leases.js";
import { runningMemory } from "./memory.js";

/** A counting semaphore: at most `limit` holders; the others wait in arrival order. */
export function createSemaphore(limit: number): {
  run<T>(fn: () => Promise<T>): Promise<T>;
  waiting(): number;
} {
  let active = 0;
  const queue: (() => void)[] = [];
  return {
    async run(fn) {
      if (active >= limit) await new Promise<void>((resolve) => queue.push(resolve));
      else active++;
      try {
        return await fn();
      } finally {
        const next = queue.shift();
        if (next) next();
        else active--;
      }
    },
    waiting: () => queue.length,
  };
}

export interface WakeCause {
  /** "wake" for a request, or what else asked. */
  cause: string;
  /** For the event: method, host, path, user agent. */
  detail?: string;
}

export interface Waker {
  /**
   * Resolves once the instance is running and healthy. Every caller for the same instance
   * shares one start (single flight); across processes the instance's lease does the same.
   */
  ensureRunning(name: string, why: WakeCause): Promise<InstanceRecord>;
  /** Starts under way or queued in this process. */
  inflight(): number;
}

function lastUsed(instance: InstanceRecord): number {
  return Math.max(
    Date.parse(instance.stateChangedAt),
    instance.lastActivityAt ? Date.parse(instance.lastActivityAt) : 0,
  );
}

export function createWaker(ctx: AccContext): Waker {
  const inflight = new Map<string, Promise<InstanceRecord>>();
  const starts = createSemaphore(Math.max(1, ctx.config.max_concurrent_starts));

  /** Stops least recently used idle instances until the running cap and memory budget allow one more. */
  async function makeRoom(name: string): Promise<void> {
    const { max_running: maxRunning, max_running_memory_mb: budget } = ctx.config;
    if (maxRunning <= 0 && budget <= 0) return;
    for (let round = 0; round < 100; round++) {
      const running = (await ctx.store.listInstances()).filter(
        (i) => (i.state === "running" || i.state === "starting") && i.name !== name,
      );
      let over = maxRunning > 0 && running.length >= maxRunning;
      let why = `max_running ${maxRunning}`;
      if (!over && budget > 0) {
        const memory = await runningMemory(ctx);
        let total = 0;
        for (const instance of running) total += memory.get(instance.name) ?? 0;
        over = total >= budget;
        why = `memory budget ${budget} MB, ${Math.round(total)} MB in use`;
      }
      if (!over) return;
      // Never evict one that is starting or being woken: it is about to be used.
      const victim = running
        .filter((i) => i.state === "running" && !inflight.has(i.name))
        .sort((a, b) => lastUsed(a) - lastUsed(b))[0];
      if (!victim) {
        throw new AccError(
          "ACC_BUSY",
          `cannot start ${name}: ${why} reached and no idle instance to stop`,
        );
      }
      await stopInstance(ctx, victim.name, {
        cause: "evict",
        message: `stopped to make room for ${name} (${why})`,
        onlyIf: (i) => i.state === "running",
      });
    }
  }

  async function startIfNeeded(name: string, why: WakeCause): Promise<InstanceRecord> {
    const instance = await getInstance(ctx, name);
    if (instance.state === "suspended")
      throw new AccError("ACC_STATE", `instance ${name} is suspended`);
    const manifest = await instanceManifest(ctx, instance);
    if (
      instance.state === "running" &&
      (await probeHealth(instance.port, manifest.health.path, 1000, manifest.health.statuses))
    )
      return instance;
    return starts.run(async () => {
      // Checked again under the lease; first here, so a start the rule refuses evicts nobody.
      await assertMayStart(ctx, await getInstance(ctx, name), why.cause);
      await makeRoom(name);
      trace?.mark(name, "room");
      const waitMs =
        (manifest.start_timeout ?? manifest.health.timeout ?? ctx.config.start_timeout) + 30_000;
      // Another process (acc start, another waker) may be starting it: the lease makes us wait, then we find it running.
      return withLease(
        ctx.store,
        name,
        "wake",
        async () => {
          trace?.mark(name, "lease");
          const current = await getInstance(ctx, name);
          if (current.state === "suspended")
            throw new AccError("ACC_STATE", `instance ${name} is suspended`);
          if (current.state === "running") {
            // Its manifest again: an upgrade that held the lease may have changed its version.
            const { health } = await instanceManifest(ctx, current);
            if (await probeHealth(current.port, health.path, 1000, health.statuses)) return current;
            // Its process died and the exit listener has not recorded it yet: record it now, so
            // the start below obeys the crash-loop rule instead of restarting it at once.
            await handleDeadRunning(ctx, current);
          }
          await startLocked(ctx, current, why.cause, why.detail);
          return current;
        },
        { waitMs, what: `instance ${name}` },
      );
    });
  }

  return {
    ensureRunning(name, why) {
      const existing = inflight.get(name);
      if (existing) return existing;
      const promise = startIfNeeded(name, why).finally(() => inflight.delete(name));
      inflight.set(name, promise);
      return promise;
    },
    inflight: () => inflight.size,
  };
}
