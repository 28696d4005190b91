import { AccError } from "../lib/errors.js";
import type { Lease, LeaseHolder, Store } from "../store/store.js";

export interface LeaseOptions {
  /** How long to wait for another operation to finish before failing as busy. */
  waitMs: number;
  pollMs?: number;
  /** Words for the busy error: "instance foo". */
  what?: string;
}

function isLease(value: Lease | LeaseHolder): value is Lease {
  return "release" in value;
}

/**
 * Runs fn holding the lease on resource: one operation per instance at a time, across
 * processes. A lease whose holder died is taken over by the store.
 */
export async function withLease<T>(
  store: Store,
  resource: string,
  operation: string,
  fn: () => Promise<T>,
  options: LeaseOptions,
): Promise<T> {
  const deadline = Date.now() + options.waitMs;
  let pause = 5;
  for (;;) {
    const got = await store.tryLease(resource, operation, new Date().toISOString());
    if (isLease(got)) {
      try {
        return await fn();
      } finally {
        await got.release();
      }
    }
    if (Date.now() >= deadline) {
      const pid = got.holder.split(":")[0];
      throw new AccError(
        "ACC_BUSY",
        `${options.what ?? resource} is busy: ${got.operation} in progress (pid ${pid}, since ${got.acquiredAt})`,
        { hint: "try again when it has finished" },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, options.pollMs ?? 50);
  }
}

/** A cross-process mutex on top of leases, for drivers that need one (nginx group commit). */
export function storeMutex(
  store: Store,
  waitMs = 120_000,
): {
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
} {
  return {
    run: (key, fn) => withLease(store, `@${key}`, "reload", fn, { waitMs, what: key }),
  };
}
