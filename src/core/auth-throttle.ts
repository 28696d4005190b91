export interface AuthThrottleOptions {
  /** Failures allowed per source within the window; the next attempt is refused. */
  maxFailures?: number;
  windowMs?: number;
  /** Sources remembered at most: beyond it, the ones that failed longest ago are forgotten. */
  maxSources?: number;
  /** Milliseconds since the epoch; passed in so that tests move time by hand. */
  now?: () => number;
}

export type ThrottleDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export interface AuthThrottle {
  /** Whether a source may try to authenticate now. */
  check(source: string): ThrottleDecision;
  fail(source: string): void;
  /** A success clears the source's failures. */
  succeed(source: string): void;
  /** Sources remembered (for tests and metrics). */
  size(): number;
}

/**
 * Limits failed authentications per source (a client address) with a sliding window: after
 * `maxFailures` failures within `windowMs`, the source is refused until the oldest of them
 * leaves the window. Memory stays bounded: each source keeps at most `maxFailures` times,
 * and at most `maxSources` sources are kept (an address that guesses tokens from a huge pool
 * of others gets little from it: each of those is throttled on its own).
 */
export function createAuthThrottle(options: AuthThrottleOptions = {}): AuthThrottle {
  const maxFailures = options.maxFailures ?? 10;
  const windowMs = options.windowMs ?? 60_000;
  const maxSources = options.maxSources ?? 10_000;
  const now = options.now ?? Date.now;
  // Failure times per source, oldest first. The map is kept in order of each source's latest
  // failure (a failing source is moved to the end), so stale sources are at its front.
  const failures = new Map<string, number[]>();

  function recent(source: string, at: number): number[] | undefined {
    const times = failures.get(source);
    if (!times) return undefined;
    while (times.length > 0 && (times[0] ?? 0) <= at - windowMs) times.shift();
    if (times.length === 0) {
      failures.delete(source);
      return undefined;
    }
    return times;
  }

  function forgetOld(at: number): void {
    for (const [source, times] of failures) {
      const last = times[times.length - 1] ?? 0;
      if (last > at - windowMs && failures.size <= maxSources) break;
      failures.delete(source);
    }
  }

  return {
    check(source) {
      const at = now();
      const times = recent(source, at);
      if (!times || times.length < maxFailures) return { allowed: true };
      const waitMs = (times[0] ?? at) + windowMs - at;
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    },

    fail(source) {
      const at = now();
      const times = recent(source, at) ?? [];
      failures.delete(source);
      times.push(at);
      if (times.length > maxFailures) times.shift();
      failures.set(source, times);
      forgetOld(at);
    },

    succeed(source) {
      failures.delete(source);
    },

    size() {
      return failures.size;
    },
  };
}
