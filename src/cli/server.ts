import { once } from "node:events";
import type http from "node:http";
import { createServerApp, createStatusApp } from "../server/app.js";
import { listenOnSocket } from "../server/listen.js";
import type { AccContext } from "../services/context.js";
import { createMetrics, type Metrics } from "../services/metrics.js";
import { idleMessage, startMonitorLoop } from "../services/monitor.js";
import { observeEvents } from "../services/observe-events.js";
import { createWaker, type Waker } from "../services/wake.js";
import type { Command } from "./command.js";

export const serverCommand: Command = {
  name: "server",
  summary:
    "Run acc server: the waker (starts a stopped instance for the request nginx hands it, on a unix socket only nginx and root can open) and the idle monitor; 127.0.0.1:<server_port> answers its health only. acc boot runs it under supervisord.",
  usage: "",
  help: [],
  options: {},
  positionals: { min: 0, max: 0, names: "" },
  json: false,
  async run(_args, cli) {
    const ctx = await cli.open();
    const log = (line: string): void => {
      process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    };
    const { server } = assembleServer(ctx, log);
    const status = createStatusApp();
    const stop = new AbortController();
    // A herd of held requests arrives at once: Node's default backlog (511) drops some.
    await listenOnSocket(server, ctx.paths.wakerSocket, 4096);
    status.listen({ port: ctx.config.server_port, host: "127.0.0.1" });
    await once(status, "listening");
    log(
      `acc server: waker on ${ctx.paths.wakerSocket}, health on 127.0.0.1:${ctx.config.server_port}`,
    );
    const monitor = startMonitor(ctx, stop.signal, log);
    await new Promise<void>((resolve) => {
      for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => resolve());
    });
    log("acc server stopping");
    stop.abort();
    // Held requests get their answers; no new connection is taken.
    server.close();
    server.closeIdleConnections();
    status.close();
    await monitor;
    await Promise.race([
      once(server, "close"),
      new Promise((resolve) => setTimeout(resolve, 10_000).unref()),
    ]);
    return { data: null, text: "" };
  },
};

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
