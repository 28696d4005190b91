import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { parse } from "smol-toml";
import { homePaths } from "../../src/core/paths.js";
import type { Operation } from "../../src/operations/types.js";
import type { AccHome } from "./acc.js";

/**
 * How a test reaches a booted home's API:
 * - local: HOME/run/api.sock, as root's CLI does (no token);
 * - nginx: acc's nginx on its HTTP port with the admin host as Host, as a remote client does;
 * - admin-socket: the socket behind nginx (HOME/waker/admin.sock) with a chosen X-Real-IP, to
 *   play several client addresses (nginx itself sets the header from the peer's address).
 */
export type Via =
  | { kind: "local" }
  | { kind: "nginx"; token?: string }
  | { kind: "admin-socket"; token?: string; source: string };

export const LOCAL: Via = { kind: "local" };

export function viaToken(token: string | undefined): Via {
  return token === undefined ? { kind: "nginx" } : { kind: "nginx", token };
}

export interface ApiAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The body as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface ApiErrorBody {
  error: { code: string; message: string; hint?: string; details?: string };
}

export interface CallOptions {
  via?: Via;
  /** An object is sent as JSON; a string as is (with content-type application/json). */
  body?: unknown;
  headers?: http.OutgoingHttpHeaders;
  timeoutMs?: number;
}

/** A home's env for a suite that needs no database (no Postgres cluster is started). */
export const NO_DATABASE: NodeJS.ProcessEnv = {
  ACC_POSTGRES: "external",
  ACC_POSTGRES_ADMIN_URL: "postgres://nobody@127.0.0.1:1/none",
  ACC_MONITOR_INTERVAL: "1h",
};

/** acc.toml's admin_host, else acc.<domain> (the default). */
export async function adminHostOf(acc: AccHome): Promise<string> {
  const config = parse(await readFile(path.join(acc.home, "acc.toml"), "utf8")) as {
    admin_host?: string;
    domain?: string;
  };
  return config.admin_host ?? `acc.${config.domain ?? "localhost"}`;
}

function requestOptions(acc: AccHome, via: Via, adminHost: string): http.RequestOptions {
  const paths = homePaths(acc.home);
  switch (via.kind) {
    case "local":
      return { socketPath: paths.apiSocket, headers: {} };
    case "nginx":
      return {
        host: "127.0.0.1",
        port: acc.httpPort,
        headers: {
          host: adminHost,
          ...(via.token === undefined ? {} : { authorization: `Bearer ${via.token}` }),
        },
      };
    case "admin-socket":
      return {
        socketPath: paths.adminSocket,
        headers: {
          host: adminHost,
          "x-real-ip": via.source,
          ...(via.token === undefined ? {} : { authorization: `Bearer ${via.token}` }),
        },
      };
  }
}

/** One API call (path under /api/v1 or absolute when it starts with /api/ or /metrics). */
export async function callApi(
  acc: AccHome,
  method: string,
  route: string,
  options: CallOptions = {},
): Promise<ApiAnswer> {
  const via = options.via ?? LOCAL;
  const base = requestOptions(acc, via, via.kind === "local" ? "acc" : await adminHostOf(acc));
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === "string"
        ? options.body
        : JSON.stringify(options.body);
  const headers: http.OutgoingHttpHeaders = {
    ...(base.headers as http.OutgoingHttpHeaders),
    ...(body !== undefined
      ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
      : {}),
    ...options.headers,
  };
  const fullPath = route.startsWith("/api/") ? route : `/api/v1${route}`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...base,
        method,
        path: fullPath,
        headers,
        agent: false,
        timeout: options.timeoutMs ?? 120_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = JSON.parse(text) as unknown;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${fullPath} timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * The first `count` server-sent events of a stream (`?follow=1`), then the connection is
 * closed. `whileOpen` runs once the request is sent (to cause the events): follow from a
 * known point (logs' `from`, events' `after`), so that what it causes is surely in the stream.
 */
export async function readEvents(
  acc: AccHome,
  route: string,
  options: {
    via?: Via;
    count: number;
    timeoutMs?: number;
    whileOpen?: () => Promise<unknown>;
  },
): Promise<{ status: number; contentType: string; events: unknown[] }> {
  const via = options.via ?? LOCAL;
  const base = requestOptions(acc, via, via.kind === "local" ? "acc" : await adminHostOf(acc));
  const fullPath = `/api/v1${route}`;
  return new Promise((resolve, reject) => {
    const events: unknown[] = [];
    const req = http.request({ ...base, method: "GET", path: fullPath, agent: false }, (res) => {
      const contentType = String(res.headers["content-type"] ?? "");
      const timer = setTimeout(
        () => finish(new Error(`${fullPath}: ${events.length} of ${options.count} events in time`)),
        options.timeoutMs ?? 30_000,
      );
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        req.destroy();
        if (error) reject(error);
        else resolve({ status: res.statusCode ?? 0, contentType, events });
      };
      if (res.statusCode !== 200 || !contentType.startsWith("text/event-stream")) {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString("utf8")));
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, contentType, events: [text] });
        });
        return;
      }
      let buffer = "";
      res.on("data", (chunk: Buffer) => {
        buffer += chunk.toString("utf8");
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split("\n")
            .filter((line) => line.startsWith("data: "))
            .map((line) => line.slice("data: ".length))
            .join("\n");
          if (data) events.push(JSON.parse(data) as unknown);
          if (events.length >= options.count) return finish();
        }
      });
      res.on("error", (error) => finish(error));
    });
    req.on("error", reject);
    req.end();
    // Not after the answer's headers: the server sends them with its first event.
    options.whileOpen?.().catch((error: unknown) => {
      req.destroy();
      reject(error instanceof Error ? error : new Error(String(error)));
    });
  });
}

export interface MadeToken {
  id: string;
  name: string;
  scope: string;
  token: string;
}

/** `acc token create --scope SCOPE [--expires D] --json`: a new token and its secret. */
export async function makeToken(
  acc: AccHome,
  scope: string,
  options: { expires?: string; name?: string } = {},
): Promise<MadeToken> {
  const out = await acc.ok([
    "token",
    "create",
    "--scope",
    scope,
    ...(options.expires === undefined ? [] : ["--expires", options.expires]),
    ...(options.name === undefined ? [] : ["--name", options.name]),
    "--json",
  ]);
  return JSON.parse(out) as MadeToken;
}

/** The CLI's one line for an error: `acc: MESSAGE (HINT)`, as bin/acc.ts prints it. */
export function cliLine(error: ApiErrorBody["error"]): string {
  return `acc: ${error.message}${error.hint ? ` (${error.hint})` : ""}`;
}

export function errorOf(answer: ApiAnswer): ApiErrorBody["error"] {
  const body = answer.json as ApiErrorBody | undefined;
  if (!body?.error || typeof body.error.message !== "string" || typeof body.error.code !== "string")
    throw new Error(`not an error body (HTTP ${answer.status}): ${answer.body.slice(0, 300)}`);
  return body.error;
}

export interface HttpCall {
  method: string;
  /** Under /api/v1, with the query. */
  path: string;
  body?: object;
}

/**
 * An operation's input as an HTTP request, as the CLI's client makes it: path parameters into
 * the path, the rest into the query (GET, DELETE) or a JSON body. Unlike the client, false
 * values are kept, and a value is sent as given (hostile ones too).
 */
export function httpCallFor(op: Operation, input: Record<string, unknown>): HttpCall {
  const rest: Record<string, unknown> = { ...input };
  const route = op.path.replace(/\{(\w+)\}/g, (_, key: string) => {
    const value = rest[key];
    delete rest[key];
    return encodeURIComponent(String(value)).replaceAll(".", "%2E");
  });
  if (op.method === "GET" || op.method === "DELETE") {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(rest)) {
      if (value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) query.append(key, String(item));
    }
    const text = query.toString();
    return { method: op.method, path: `${route}${text ? `?${text}` : ""}` };
  }
  return { method: op.method, path: route, body: rest };
}

/** The names of the instances this suite uses, for the inputs below. */
export interface InputNames {
  /** An existing instance. */
  instance: string;
  /** A backup of it (NAME/TIMESTAMP). */
  backup: string;
  /** An existing token's name. */
  token: string;
}

/**
 * A minimal valid input per operation id, that changes as little as it can (a dry run where
 * there is one). Every operation of OPERATIONS needs one: the API suites fail for a missing one.
 */
export const MINIMAL_INPUTS: Record<string, (n: InputNames) => Record<string, unknown>> = {
  "instance.list": () => ({}),
  "instance.show": (n) => ({ name: n.instance }),
  "instance.create": () => ({ model: "hello", start: false }),
  "instance.start": (n) => ({ name: n.instance }),
  "instance.stop": (n) => ({ name: n.instance }),
  "instance.restart": (n) => ({ name: n.instance }),
  "instance.suspend": (n) => ({ name: n.instance }),
  "instance.resume": (n) => ({ name: n.instance }),
  "instance.set": (n) => ({ name: n.instance, settings: ["idle-timeout=15m"] }),
  "instance.host-add": (n) => ({ name: n.instance, host: "shop.example.test" }),
  "instance.host-remove": (n) => ({ name: n.instance, host: "shop.example.test" }),
  "instance.destroy": (n) => ({ name: n.instance, backup: false }),
  "instance.logs": (n) => ({ name: n.instance, lines: 5 }),
  "instance.backup": (n) => ({ name: n.instance }),
  "backup.list": (n) => ({ name: n.instance }),
  "backup.download": (n) => ({ name: n.instance, backup: n.backup.split("/")[1] ?? "" }),
  "instance.restore": (n) => ({ name: n.instance, backup: n.backup }),
  "instance.upgrade": (n) => ({ names: [n.instance], dry_run: true }),
  // Refused: the instance was never upgraded.
  "instance.rollback": (n) => ({ name: n.instance }),
  "event.list": (n) => ({ name: n.instance, lines: 5 }),
  "model.list": () => ({}),
  "model.show": () => ({ name: "hello" }),
  "model.prune": () => ({ dry_run: true }),
  "system.status": () => ({}),
  "system.monitor": () => ({ dry_run: true }),
  "system.doctor": () => ({}),
  "token.create": () => ({ scope: "read" }),
  "token.list": () => ({}),
  // No certificate is valid here (tls is off in the test homes): refused before anything else.
  "tls.import": () => ({ cert: "-----BEGIN CERTIFICATE-----", key: "k", wildcard: true }),
  "tls.list": () => ({}),
  // tls is off in the test homes: refused as such, after the name is checked.
  "tls.issue": (n) => ({ name: n.instance }),
  "token.revoke": (n) => ({ token: n.token }),
};

/** The operations that have no entry in MINIMAL_INPUTS (a new one must get its own). */
export function missingInputs(operations: readonly Operation[]): string[] {
  return operations.map((op) => op.id).filter((id) => !(id in MINIMAL_INPUTS));
}
