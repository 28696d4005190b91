import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { ACME_CHALLENGE_INSTANCE } from "../core/tls-hosts.js";
import { isValidInstanceName, validateInstanceName } from "../core/validate.js";
import { isAccError } from "../lib/errors.js";
import { challengeAnswer } from "../services/acme-check.js";
import type { AccContext } from "../services/context.js";
import { codeDirOf, instanceManifest, requestTimeoutOf } from "../services/model-code.js";
import { restartCheck } from "../services/crashes.js";
import type { Metrics } from "../services/metrics.js";
import type { Waker } from "../services/wake.js";
import { trace } from "../lib/trace.js";
import type { InstanceRecord } from "../store/store.js";
import { decideBeforeWake, type BeforeWake, type Refusal } from "./before-wake.js";
import { renderPage, WAIT_PATH, type PageKind } from "./pages.js";

/** At most this many held requests per instance go to the app before its health check passes. */
const MAX_EARLY = 16;

export interface ServerDeps {
  ctx: AccContext;
  waker: Waker;
  /** One line per notable thing (a failed wake); the server's log is supervisord's. */
  log(line: string): void;
  /** acc server's metrics (its /metrics route renders them); absent: nothing is counted. */
  metrics?: Metrics;
}

// Hop-by-hop headers (RFC 9110 7.6.1) and acc's own: never passed on to the instance.
const DROP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "x-acc-instance",
  "x-acc-connect-time",
]);

function forwardHeaders(req: IncomingMessage): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [key, value] of Object.entries(req.headers))
    if (!DROP.has(key) && value !== undefined) out[key] = value;
  return out;
}

/** The held request, as it is passed to the app on its port (a fresh connection). */
function requestToApp(
  req: IncomingMessage,
  port: number,
  onAnswer: (answer: IncomingMessage) => void,
): http.ClientRequest {
  const options = {
    host: "127.0.0.1",
    port,
    method: req.method,
    path: req.url,
    headers: forwardHeaders(req),
    agent: false,
  };
  return http.request(options, onAnswer);
}

/** The app's answer, streamed to the client (hop-by-hop headers left out). */
function streamAnswer(answer: IncomingMessage, res: ServerResponse): void {
  const headers = { ...answer.headers };
  delete headers.connection;
  delete headers["keep-alive"];
  res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
  answer.pipe(res);
  answer.on("error", () => res.destroy());
}

function wantsJson(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? "";
  return accept.includes("application/json") && !accept.includes("text/html");
}

function isNavigation(req: IncomingMessage): boolean {
  return req.method === "GET" && (req.headers.accept ?? "").includes("text/html");
}

function describe(req: IncomingMessage): string {
  const ua = req.headers["user-agent"] ?? "-";
  return `${req.method ?? "GET"} ${req.headers.host ?? "-"}${(req.url ?? "/").slice(0, 200)} ua=${JSON.stringify(ua.slice(0, 120))}`;
}

/** nginx says "-" when the instance never accepted the connection: only then was nothing sent to it. */
function neverReachedInstance(req: IncomingMessage): boolean {
  const header = req.headers["x-acc-connect-time"];
  const last =
    (Array.isArray(header) ? header.join(",") : (header ?? "-")).split(",").at(-1)?.trim() ?? "-";
  return last === "-" || last === "";
}

/** What acc server answers on its TCP port: its own health, and nothing that names an instance. */
function answerStatus(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    return;
  }
  res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
}

/**
 * acc server's TCP port (server_port), which any local user can reach: health only. Wakes come
 * only through the waker's unix socket, which only nginx's workers and root can open.
 */
export function createStatusApp(): http.Server {
  const server = http.createServer(answerStatus);
  server.on("upgrade", (_req: IncomingMessage, socket: Duplex) => socket.destroy());
  return server;
}

/**
 * The waker of `acc server`, for nginx only: it listens on a unix socket that only nginx's
 * workers and root can open, so X-Acc-Instance (set by nginx) is trusted. It does not listen.
 */
export function createServerApp(deps: ServerDeps): http.Server {
  const { ctx, waker } = deps;

  /**
   * Counts a request as held (acc_requests_held) until its instance's start ends or the client
   * has its answer or leaves (the waiting page, an early answer), whichever comes first.
   */
  function countHeld(started: Promise<unknown>, closed: NodeJS.EventEmitter): void {
    const held = deps.metrics?.heldRequests;
    if (held === undefined) return;
    held.inc();
    let done = false;
    const release = (): void => {
      if (done) return;
      done = true;
      held.dec();
    };
    started.then(release, release);
    closed.once("close", release);
  }

  async function page(
    res: ServerResponse,
    req: IncomingMessage,
    status: number,
    kind: PageKind,
    instance: InstanceRecord | undefined,
    extra: { reason?: string; code?: string; headers?: Record<string, string> } = {},
  ): Promise<void> {
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string> = {
      "cache-control": "no-store",
      "x-acc-state": kind,
      ...extra.headers,
    };
    if (wantsJson(req)) {
      const body = JSON.stringify({
        error: {
          code: extra.code ?? kind,
          message: `${instance?.name ?? "instance"}: ${extra.reason ?? kind}`,
        },
      });
      res.writeHead(status, { ...headers, "content-type": "application/json" }).end(body);
      return;
    }
    const codeDir = instance
      ? codeDirOf(ctx, instance.model, instance.modelVersion, instance.modelHash)
      : undefined;
    const html = await renderPage(
      kind,
      {
        name: instance?.name ?? "",
        ...(extra.reason !== undefined ? { reason: extra.reason } : {}),
      },
      codeDir,
    );
    res
      .writeHead(status, { ...headers, "content-type": "text/html; charset=utf-8" })
      .end(req.method === "HEAD" ? undefined : html);
  }

  async function beforeWake(
    req: IncomingMessage,
    instance: InstanceRecord | undefined,
  ): Promise<BeforeWake> {
    const request = {
      method: req.method ?? "",
      userAgent: req.headers["user-agent"] ?? "",
      neverReachedInstance: neverReachedInstance(req),
    };
    return decideBeforeWake(instance, request, {
      wakeFilter: ctx.config.wake_filter,
      now: ctx.now().getTime(),
      restart: instance ? await restartCheck(ctx, instance) : { allowed: true, failures: 0 },
    });
  }

  /**
   * Passes the held request (its body too, streamed) to the instance and streams the answer
   * back. The app has it from then on: a failure or the instance's request timeout is a 502 or
   * 504 (JSON to JSON clients), and the request is never sent again.
   */
  async function proxy(
    req: IncomingMessage,
    res: ServerResponse,
    instance: InstanceRecord,
  ): Promise<void> {
    const timeoutMs = requestTimeoutOf(ctx, await instanceManifest(ctx, instance));
    trace?.mark(instance.name, "proxy");
    const upstream = requestToApp(req, instance.port, (answer) => {
      trace?.mark(instance.name, "answer");
      upstream.setTimeout(0);
      streamAnswer(answer, res);
      if (trace) res.once("finish", () => trace?.mark(instance.name, "answer-sent"));
    });
    upstream.setTimeout(timeoutMs, () => {
      upstream.destroy();
      void page(res, req, 504, "failed", instance, {
        reason: `the application did not answer within ${timeoutMs / 1000} s`,
      });
    });
    upstream.on("error", (error) => {
      deps.log(`proxy to ${instance.name} (port ${instance.port}) failed: ${error.message}`);
      if (res.headersSent) res.destroy();
      else
        void page(res, req, 502, "failed", instance, { reason: "the application did not answer" });
    });
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  /**
   * Whether the held request may go to the app before its health check passes: a GET or HEAD
   * without a body (sending it again is harmless), to an instance that takes its socket from
   * acc (socket activation), whose socket listens from the moment acc-launch takes it.
   */
  async function mayGoEarly(req: IncomingMessage, instance: InstanceRecord): Promise<boolean> {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    if (req.url === WAIT_PATH || instance.state === "running") return false;
    if (req.headers["transfer-encoding"] !== undefined) return false;
    if ((req.headers["content-length"] ?? "0") !== "0") return false;
    return (await instanceManifest(ctx, instance)).socket_activation;
  }

  /**
   * Sends the held request to the app while it starts: it waits in the socket's backlog until
   * the app accepts, so the answer comes one round trip sooner than after the health check.
   * Until acc-launch has made the socket, the connection is refused: it is tried again.
   * "answered": the app's answer is being streamed; "started": the start ended before an answer
   * came, the caller proxies as usual; "failed": the start failed, or the client left.
   */
  async function sendEarly(
    req: IncomingMessage,
    res: ServerResponse,
    instance: InstanceRecord,
    started: Promise<InstanceRecord>,
  ): Promise<"answered" | "started" | "failed"> {
    const timeoutMs = requestTimeoutOf(ctx, await instanceManifest(ctx, instance));
    let settled: "started" | "failed" | undefined;
    let current: http.ClientRequest | undefined;
    started.then(
      () => {
        settled = "started";
        // The app is up: from now on its request timeout counts, as for any request it has.
        current?.setTimeout(timeoutMs, () => {
          current?.destroy();
          void page(res, req, 504, "failed", instance, {
            reason: `the application did not answer within ${timeoutMs / 1000} s`,
          });
        });
      },
      () => {
        settled = "failed";
        // A start that fails ends the wait in the backlog: the caller shows the failed page.
        current?.destroy();
      },
    );
    res.on("close", () => {
      if (!res.writableFinished) current?.destroy();
    });
    for (;;) {
      if (settled !== undefined || res.headersSent || res.destroyed) return settled ?? "failed";
      const attempt = await new Promise<"answered" | "closed">((resolve) => {
        const upstream = requestToApp(req, instance.port, (answer) => {
          // The client may have had the waiting page meanwhile: this answer then goes nowhere.
          if (res.headersSent || res.destroyed) {
            answer.resume();
            upstream.destroy();
            resolve("closed");
            return;
          }
          trace?.mark(instance.name, "answer-early");
          upstream.setTimeout(0);
          streamAnswer(answer, res);
          if (trace) res.once("finish", () => trace?.mark(instance.name, "answer-sent"));
          resolve("answered");
        });
        if (trace) {
          upstream.once("socket", (socket) =>
            socket.once("connect", () => trace?.mark(instance.name, "early-connected")),
          );
        }
        // Timed out (see above): the client has its 504, and the app the request.
        upstream.on("error", () => {
          trace?.mark(instance.name, "early-refused");
          resolve(res.headersSent ? "answered" : "closed");
        });
        current = upstream;
        upstream.end();
      });
      if (attempt === "answered") return "answered";
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  const earlyInFlight = new Map<string, number>();
  function countEarly<T>(name: string, sending: Promise<T>): Promise<T> {
    earlyInFlight.set(name, (earlyInFlight.get(name) ?? 0) + 1);
    return sending.finally(() => {
      const left = (earlyInFlight.get(name) ?? 1) - 1;
      if (left > 0) earlyInFlight.set(name, left);
      else earlyInFlight.delete(name);
    });
  }

  /** The CA's HTTP-01 challenge (or acc's own reachability probe): the token's answer, or 404. */
  async function answerChallenge(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const prefix = "/.well-known/acme-challenge/";
    const url = req.url ?? "";
    const answer = url.startsWith(prefix)
      ? await challengeAnswer(ctx, url.slice(prefix.length))
      : undefined;
    if (answer === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("no such challenge\n");
      return;
    }
    res
      .writeHead(200, { "content-type": "text/plain", "cache-control": "no-store" })
      .end(req.method === "HEAD" ? undefined : answer);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const header = req.headers["x-acc-instance"];
    if (header === undefined) return answerStatus(req, res);
    if (header === ACME_CHALLENGE_INSTANCE) return answerChallenge(req, res);
    let name: string;
    try {
      // nginx sets X-Acc-Instance from its host map, so a client cannot name another instance.
      name = validateInstanceName(Array.isArray(header) ? (header[0] ?? "") : header);
    } catch {
      res.writeHead(400, { "content-type": "text/plain" }).end("bad instance name\n");
      return;
    }
    trace?.mark(name, "request");
    const decision = await beforeWake(req, await ctx.store.getInstance(name));
    trace?.mark(name, "decided", decision.action);
    if (decision.action === "refuse")
      return page(res, req, decision.status, decision.kind, decision.instance, decision);
    const { instance } = decision;

    const started = waker.ensureRunning(name, { cause: "wake", detail: describe(req) });
    countHeld(started, res);
    // A client that leaves does not cancel the start: others may share it.
    started.catch(() => undefined);
    // A few requests go early; a herd waits for the health check, as the backlog is finite.
    const early =
      (earlyInFlight.get(name) ?? 0) < MAX_EARLY && (await mayGoEarly(req, instance))
        ? countEarly(name, sendEarly(req, res, instance, started))
        : undefined;
    if (isNavigation(req)) {
      const soon = await Promise.race([
        early ??
          started.then(
            () => "started" as const,
            () => "failed" as const,
          ),
        new Promise<"late">((resolve) =>
          setTimeout(() => resolve("late"), ctx.config.waiting_page_after).unref(),
        ),
      ]);
      if (soon === "answered") return;
      if (soon === "late")
        return page(res, req, 503, "waiting", instance, { headers: { "retry-after": "2" } });
    }
    if (early !== undefined && (await early) === "answered") return;
    let running: InstanceRecord;
    try {
      running = await started;
    } catch (error) {
      if (!isAccError(error)) throw error;
      deps.log(`wake of ${name} failed: ${error.message}`);
      if (error.code === "ACC_STATE")
        return page(res, req, 503, "suspended", instance, { reason: error.message });
      return page(res, req, 503, "failed", instance, { reason: error.message, code: error.code });
    }
    if (req.url === WAIT_PATH) {
      res
        .writeHead(200, { "content-type": "application/json", "cache-control": "no-store" })
        .end('{"state":"running"}');
      return;
    }
    if (res.destroyed) return;
    await proxy(req, res, running);
  }

  /** An upgrade's refusal: a plain HTTP answer written on its socket, which is then closed. */
  function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
    const body = `${refusal.instance?.name ?? "instance"}: ${refusal.reason ?? refusal.kind}\n`;
    // Header values are acc's own constants (never a reason or anything a client sent).
    const headers: Record<string, string> = {
      "cache-control": "no-store",
      "x-acc-state": refusal.kind,
      ...refusal.headers,
      "content-type": "text/plain; charset=utf-8",
      "content-length": String(Buffer.byteLength(body)),
      connection: "close",
    };
    const head = [`HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status] ?? ""}`];
    for (const [key, value] of Object.entries(headers)) head.push(`${key}: ${value}`);
    socket.end(`${head.join("\r\n")}\r\n\r\n${body}`);
  }

  async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // The HTTP server stops watching a socket it hands over: without a listener, a client that
    // leaves during a wake would be an unhandled error.
    socket.on("error", () => socket.destroy());
    const header = req.headers["x-acc-instance"];
    const name = typeof header === "string" ? header : "";
    const instance = isValidInstanceName(name) ? await ctx.store.getInstance(name) : undefined;
    const decision = await beforeWake(req, instance);
    if (decision.action === "refuse") return refuseUpgrade(socket, decision);
    let running: InstanceRecord;
    try {
      const started = waker.ensureRunning(name, { cause: "wake", detail: describe(req) });
      countHeld(started, socket);
      running = await started;
    } catch (error) {
      if (!isAccError(error)) throw error;
      deps.log(`wake of ${name} failed: ${error.message}`);
      return refuseUpgrade(socket, {
        status: 503,
        kind: error.code === "ACC_STATE" ? "suspended" : "failed",
        instance: decision.instance,
        reason: error.message,
        headers: {},
      });
    }
    if (socket.destroyed) return;
    const upstream = connect(running.port, "127.0.0.1", () => {
      const lines = [`${req.method ?? "GET"} ${req.url ?? "/"} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const key = req.rawHeaders[i] ?? "";
        if (!key.toLowerCase().startsWith("x-acc-"))
          lines.push(`${key}: ${req.rawHeaders[i + 1] ?? ""}`);
      }
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      deps.log(
        `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
      if (!res.headersSent)
        res.writeHead(500, { "content-type": "text/plain" }).end("internal error\n");
      else res.destroy();
    });
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    handleUpgrade(req, socket, head).catch((error: unknown) => {
      deps.log(`upgrade failed: ${error instanceof Error ? error.message : String(error)}`);
      socket.destroy();
    });
  });
  // Held requests can wait for a whole start; the defaults would cut them.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  return server;
}
