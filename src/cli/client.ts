import http, { type IncomingMessage } from "node:http";
import type { LookupFunction } from "node:net";
import { AccError, hasErrno, isAccErrorCode } from "../lib/errors.js";
import type { Operation } from "../operations/types.js";
import type { Progress } from "../services/context.js";

/** The API as the CLI sees it: an operation in, its answer (or its AccError) out. */
export interface ApiClient {
  /** Where it goes, for messages: the socket's path or the URL. */
  target: string;
  /**
   * The answer's JSON as it came (the CLI prints it as is with --json), or undefined when
   * nothing was listening (the server is down: the CLI then runs the operation itself).
   */
  call(op: Operation, input: object, progress?: Progress): Promise<string | undefined>;
  /**
   * The answer's JSON copied to `out` as it comes, then a newline, never parsed nor held whole
   * (acc list --json at 10,000 instances); false when nothing was listening, as for call().
   */
  pipe(op: Operation, input: object, out: NodeJS.WritableStream): Promise<boolean>;
  /** A stream's events, one by one, until the server ends it or the signal aborts. */
  follow(
    op: Operation,
    input: object,
    onEvent: (event: unknown) => void,
    signal: AbortSignal,
  ): Promise<boolean>;
}

export interface ApiRequest {
  method: string;
  /** Path and query, under /api/v1. */
  path: string;
  body: string | undefined;
}

/** Path parameters into the path; the rest into the query (GET, DELETE) or a JSON body. */
export function apiRequest(op: Operation, input: object): ApiRequest {
  const rest: Record<string, unknown> = { ...input };
  const path = op.path.replace(/\{(\w+)\}/g, (_, key: string) => {
    const value = rest[key];
    delete rest[key];
    return encodeURIComponent(String(value));
  });
  if (op.method === "GET" || op.method === "DELETE") {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(rest)) {
      if (value === undefined || value === false) continue;
      for (const item of Array.isArray(value) ? value : [value]) query.append(key, String(item));
    }
    const text = query.toString();
    return { method: op.method, path: `/api/v1${path}${text ? `?${text}` : ""}`, body: undefined };
  }
  return { method: op.method, path: `/api/v1${path}`, body: JSON.stringify(rest) };
}

/** `{ "error": { code, message, hint, details } }` back into the AccError it was. */
export function errorFromBody(status: number, text: string): AccError {
  try {
    const body = JSON.parse(text) as {
      error?: { code?: string; message?: string; hint?: string; details?: string };
    };
    const error = body.error;
    if (error && typeof error.message === "string" && isAccErrorCode(error.code)) {
      return new AccError(error.code, error.message, {
        ...(error.hint ? { hint: error.hint } : {}),
        ...(error.details ? { details: error.details } : {}),
      });
    }
  } catch {
    // Not acc's JSON (a proxy's error page): said below.
  }
  return new AccError("ACC_FAILED", `the API answered HTTP ${status}`, {
    details: text.slice(0, 500),
  });
}

// RFC 6761: *.localhost is loopback, as in browsers and curl (Node's resolver does not know it).
const lookupLocalhost: LookupFunction = (hostname, options, callback) => {
  if (hostname === "localhost" || hostname.endsWith(".localhost")) {
    if (options.all) callback(null, [{ address: "127.0.0.1", family: 4 }]);
    else callback(null, "127.0.0.1", 4);
    return;
  }
  import("node:dns").then(
    (dns) => dns.lookup(hostname, options, callback as never),
    (error: unknown) => callback(error as NodeJS.ErrnoException, "", 4),
  );
};

interface Transport {
  target: string;
  request(
    options: http.RequestOptions,
    onResponse: (res: IncomingMessage) => void,
  ): Promise<http.ClientRequest>;
  headers: http.OutgoingHttpHeaders;
  /** Errors that mean nobody listens: the server is down, so the CLI works directly. */
  down(error: unknown): boolean;
}

function unixTransport(socketPath: string): Transport {
  return {
    target: socketPath,
    request: (options, onResponse) =>
      Promise.resolve(http.request({ ...options, socketPath }, onResponse)),
    headers: {},
    // A socket file left by a server that was killed refuses; no file: never booted.
    // Not allowed to open it (another user's home): the direct path says what is wrong.
    down: (error) =>
      hasErrno(error, "ENOENT") || hasErrno(error, "ECONNREFUSED") || hasErrno(error, "EACCES"),
  };
}

function urlTransport(url: string, token: string | undefined): Transport {
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new AccError("ACC_USAGE", `invalid API URL ${JSON.stringify(url)}`, {
      hint: "use https://acc.example.com (ACC_API_URL or --url)",
    });
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new AccError("ACC_USAGE", `invalid API URL ${JSON.stringify(url)}`, {
      hint: "use an http:// or https:// URL",
    });
  }
  const prefix = base.pathname.replace(/\/+$/, "");
  return {
    target: base.origin,
    // node:https (and TLS, crypto) loaded for an https URL only: the local socket never needs it.
    request: async (options, onResponse) =>
      (base.protocol === "https:" ? (await import("node:https")).default : http).request(
        {
          ...options,
          protocol: base.protocol,
          hostname: base.hostname,
          port: base.port,
          path: `${prefix}${options.path ?? ""}`,
          lookup: lookupLocalhost,
        },
        onResponse,
      ),
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    // A remote server that does not answer is an error, never a reason to act locally.
    down: () => false,
  };
}

function send(
  transport: Transport,
  request: ApiRequest,
  accept: string,
  signal?: AbortSignal,
): Promise<IncomingMessage | undefined> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { ...transport.headers, accept };
    if (request.body !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(request.body);
    }
    transport
      .request(
        { method: request.method, path: request.path, headers, ...(signal ? { signal } : {}) },
        resolve,
      )
      .then((req) => {
        req.on("error", (error) => {
          if (signal?.aborted) resolve(undefined);
          // Only a refusal before anything was sent: the operation surely did not run.
          else if (!req.reusedSocket && transport.down(error)) resolve(undefined);
          else
            reject(
              new AccError(
                "ACC_FAILED",
                `cannot reach acc's API at ${transport.target}: ${error.message}`,
                {
                  hint: "is acc server running? acc status",
                },
              ),
            );
        });
        req.end(request.body);
      }, reject);
  });
}

async function readBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Lines of a long operation's progress (server/api.ts sendWithProgress), then its result. */
async function readProgress(res: IncomingMessage, progress: Progress): Promise<string> {
  let buffer = "";
  let last: { result?: unknown; error?: unknown; status?: number } | undefined;
  const handle = (text: string): void => {
    if (!text) return;
    const line = JSON.parse(text) as {
      step?: string;
      output?: string;
      result?: unknown;
      error?: unknown;
      status?: number;
    };
    if (typeof line.step === "string") progress.step(line.step);
    else if (typeof line.output === "string") progress.output?.(line.output);
    else last = line;
  };
  for await (const chunk of res) {
    buffer += (chunk as Buffer).toString("utf8");
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      handle(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
    }
  }
  handle(buffer);
  if (last === undefined)
    throw new AccError("ACC_FAILED", "acc server ended the answer before its result", {
      hint: "see HOME/supervisor/logs/acc-server.log",
    });
  if ("result" in last) return JSON.stringify(last.result);
  throw errorFromBody(last.status ?? 500, JSON.stringify({ error: last.error }));
}

function makeClient(transport: Transport): ApiClient {
  return {
    target: transport.target,
    async call(op, input, progress) {
      // A long operation on a terminal: its steps and its programs' output as they come.
      const stream = progress !== undefined && op.long === true;
      const accept = stream ? "application/x-ndjson, application/json" : "application/json";
      const res = await send(transport, apiRequest(op, input), accept);
      if (res === undefined) return undefined;
      if (stream && (res.headers["content-type"] ?? "").startsWith("application/x-ndjson"))
        return readProgress(res, progress);
      const text = await readBody(res);
      if ((res.statusCode ?? 500) >= 400) throw errorFromBody(res.statusCode ?? 500, text);
      return text;
    },
    async pipe(op, input, out) {
      const res = await send(transport, apiRequest(op, input), "application/json");
      if (res === undefined) return false;
      if ((res.statusCode ?? 500) >= 400)
        throw errorFromBody(res.statusCode ?? 500, await readBody(res));
      await new Promise<void>((resolve, reject) => {
        res.once("error", reject);
        res.once("end", resolve);
        res.pipe(out, { end: false });
      });
      await new Promise<void>((resolve) => out.write("\n", () => resolve()));
      return true;
    },
    async follow(op, input, onEvent, signal) {
      const request = apiRequest(op, { ...input, follow: true });
      const res = await send(transport, request, "text/event-stream", signal);
      if (res === undefined) return signal.aborted;
      if ((res.statusCode ?? 500) >= 400)
        throw errorFromBody(res.statusCode ?? 500, await readBody(res));
      let buffer = "";
      try {
        for await (const chunk of res) {
          buffer += (chunk as Buffer).toString("utf8");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = frame
              .split("\n")
              .filter((line) => line.startsWith("data:"))
              .map((line) => line.slice(5).trimStart())
              .join("\n");
            if (data) onEvent(JSON.parse(data));
          }
        }
      } catch (error) {
        if (!signal.aborted) throw error;
      }
      return true;
    },
  };
}

/**
 * The API for this command line: remote with --url/ACC_API_URL (and a token), else the local
 * socket of the home's acc server.
 */
export function apiClient(options: {
  url: string | undefined;
  token: string | undefined;
  socketPath: string;
}): ApiClient {
  return makeClient(
    options.url === undefined
      ? unixTransport(options.socketPath)
      : urlTransport(options.url, options.token),
  );
}
