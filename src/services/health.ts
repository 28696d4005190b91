import http from "node:http";
import { createConnection } from "node:net";

/** Whether a health check's answer means ready: any 2xx, and the statuses the model lists. */
export function healthPasses(status: number, statuses: readonly number[] = []): boolean {
  return (status >= 200 && status < 300) || statuses.includes(status);
}

/**
 * One health request straight to the instance's port (never through nginx: it must not count
 * as activity); its status, or undefined when nothing answered in time.
 */
export function probeStatus(
  port: number,
  path: string,
  timeoutMs: number,
): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "GET",
        agent: false,
        timeout: timeoutMs,
        headers: { "user-agent": "acc-health" },
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 500;
        res.on("end", () => resolve(status));
        res.on("error", () => resolve(undefined));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}

/** Whether the health check passes now (see healthPasses). */
export async function probeHealth(
  port: number,
  path: string,
  timeoutMs: number,
  statuses: readonly number[] = [],
): Promise<boolean> {
  const status = await probeStatus(port, path, timeoutMs);
  return status !== undefined && healthPasses(status, statuses);
}

export interface WaitHealthyOptions {
  port: number;
  path: string;
  timeoutMs: number;
  /** Statuses besides 2xx that pass. */
  statuses?: readonly number[];
  /** Checked between probes: a reason to give up early, such as the process having exited. */
  giveUp?: () => Promise<string | undefined>;
  signal?: AbortSignal;
}

/**
 * Polls the health check until it passes. The first seconds poll every 2 ms: an app is often
 * up within tens of milliseconds, and any gap between polls adds straight to the user's wait
 * (a refused connect costs ~0.1 ms). Slow starters are then polled every 50 ms.
 */
export async function waitHealthy(
  options: WaitHealthyOptions,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  let lastGiveUpCheck = started;
  let lastStatus: number | undefined;
  for (;;) {
    if (options.signal?.aborted) return { ok: false, reason: "aborted" };
    const remaining = deadline - Date.now();
    const status = await probeStatus(
      options.port,
      options.path,
      Math.max(50, Math.min(remaining, 5000)),
    );
    if (status !== undefined) {
      if (healthPasses(status, options.statuses)) return { ok: true };
      lastStatus = status;
    }
    // Asking supervisord whether the process died costs a round trip: every 50 ms is enough.
    if (options.giveUp && Date.now() - lastGiveUpCheck >= 50) {
      lastGiveUpCheck = Date.now();
      const reason = await options.giveUp();
      if (reason !== undefined) return { ok: false, reason };
    }
    if (Date.now() >= deadline) {
      return {
        ok: false,
        reason:
          lastStatus === undefined
            ? `health check ${options.path} did not pass within ${options.timeoutMs} ms`
            : `health check ${options.path} answered ${lastStatus} (only 2xx passes, or what [health] statuses lists) for ${options.timeoutMs} ms`,
      };
    }
    const pause = Date.now() - started < 3000 ? 2 : 50;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** Whether something accepts connections on host:port. */
export function portAnswers(port: number, host = "127.0.0.1", timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port, timeout: timeoutMs });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}
