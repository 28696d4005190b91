import http from "node:http";
import { createConnection } from "node:net";

/** One health request straight to the instance's port (never through nginx: it must not count as activity). */
export function probeHealth(port: number, path: string, timeoutMs: number): Promise<boolean> {
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
        const ok = (res.statusCode ?? 500) < 400;
        res.on("end", () => resolve(ok));
        res.on("error", () => resolve(false));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

export interface WaitHealthyOptions {
  port: number;
  path: string;
  timeoutMs: number;
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
  for (;;) {
    if (options.signal?.aborted) return { ok: false, reason: "aborted" };
    const remaining = deadline - Date.now();
    if (await probeHealth(options.port, options.path, Math.max(50, Math.min(remaining, 5000)))) {
      return { ok: true };
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
        reason: `health check ${options.path} did not pass within ${options.timeoutMs} ms`,
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
