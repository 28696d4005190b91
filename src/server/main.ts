import { once } from "node:events";
import { readFile } from "node:fs/promises";
import type http from "node:http";
import path from "node:path";
import { OPERATIONS } from "../operations/registry.js";
import { createApi } from "./api.js";
import { bearerAuthenticator } from "./auth.js";
import { createServerApp, createStatusApp } from "./app.js";
import { listenOnSocket } from "./listen.js";
import { registerMetricsRoute } from "./metrics-route.js";
import { registerUi } from "./ui/routes.js";
import { createSessionStore } from "./ui/sessions.js";
import type { AccContext } from "../services/context.js";
import { idleMessage } from "../core/duration.js";
import { startMonitorLoop } from "../services/monitor.js";
import { startRenewalLoop } from "../services/acme-renewal.js";
import { createMetrics, type Metrics } from "../services/metrics.js";
import { observeEvents } from "../services/observe-events.js";
import { createWaker, type Waker } from "../services/wake.js";

export interface AssembledServer {
  waker: Waker;
  /** The waker's HTTP app (it does not listen). */
  server: http.Server;
  /** Fed by every event this process records and by the waker; the /metrics route renders it. */
  metrics: Metrics;
}

/**
 * The parts of acc server, wired: the metrics observe every event recorded through ctx (so
 * call this before anything else takes ctx), the waker and its app feed and share them.
 */
export function assembleServer(ctx: AccContext, log: (line: string) => void): AssembledServer {
  const metrics = createMetrics(ctx, { instanceMemory: ctx.config.metrics_instance_memory });
  observeEvents(ctx, metrics.onEvent);
  const waker = createWaker(ctx);
  const server = createServerApp({ ctx, waker, log, metrics });
  return { waker, server, metrics };
}

/** acc server: the waker, the API (local socket and nginx's admin socket), the idle monitor. */
export async function runServer(ctx: AccContext): Promise<void> {
  const log = (line: string): void => {
    process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  };
  const assembled = assembleServer(ctx, log);
  const { server } = assembled;
  const status = createStatusApp();
  const stop = new AbortController();
  // A herd of held requests arrives at once: Node's default backlog (511) drops some.
  await listenOnSocket(server, ctx.paths.wakerSocket, 4096);
  const pkg = JSON.parse(await readFile(path.join(ctx.accRoot, "package.json"), "utf8")) as {
    version: string;
  };
  const auth = bearerAuthenticator(ctx);
  const api = await createApi({
    ctx,
    operations: OPERATIONS,
    version: pkg.version,
    log,
    authenticate: auth.authenticate,
    extend: (app) => {
      registerMetricsRoute(app, auth, assembled.metrics);
      registerUi(app, {
        ctx,
        operations: OPERATIONS,
        sessions: createSessionStore(),
        verify: (secret, source) => auth.verify(secret, source),
      });
    },
  });
  // The local API: root (or the user acc runs as) alone. The admin host's: nginx's workers.
  await listenOnSocket(api.local, ctx.paths.apiSocket, 511, 0o600);
  await listenOnSocket(api.nginx, ctx.paths.adminSocket, 511);
  status.listen({ port: ctx.config.server_port, host: "127.0.0.1" });
  await once(status, "listening");
  log(
    `acc server: waker on ${ctx.paths.wakerSocket}, API on ${ctx.paths.apiSocket} and ${ctx.paths.adminSocket}, health on 127.0.0.1:${ctx.config.server_port}`,
  );
  const monitor = startMonitor(ctx, stop.signal, log);
  const renewal = startRenewalLoop(ctx, { signal: stop.signal, log });
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => resolve());
  });
  log("acc server stopping");
  stop.abort();
  // Held requests get their answers; no new connection is taken.
  server.close();
  server.closeIdleConnections();
  status.close();
  // Streams (logs -f) end with the server; other API calls finish first.
  for (const listener of [api.local, api.nginx]) {
    listener.close();
    listener.closeIdleConnections();
  }
  await monitor;
  await renewal;
  await Promise.race([
    once(server, "close"),
    new Promise((resolve) => setTimeout(resolve, 10_000).unref()),
  ]);
}

/** The idle monitor, every monitor_interval, until the server stops. */
function startMonitor(
  ctx: AccContext,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<void> {
  return startMonitorLoop(ctx, {
    intervalMs: ctx.config.monitor_interval,
    signal,
    log,
    onReport: (report) => {
      for (const stopped of report.stopped)
        log(`monitor: stopped ${stopped.name}: ${idleMessage(stopped)}`);
      for (const file of report.rotated_logs ?? []) log(`monitor: rotated ${file}`);
    },
  });
}
