import http, { type IncomingMessage, type ServerResponse } from "node:http";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import { allows } from "../core/scopes.js";
import { showValue } from "../core/validate.js";
import { AccError, httpStatusFor, isAccError, type AccErrorCode } from "../lib/errors.js";
import type { AccContext } from "../services/context.js";
import { refreshConfig } from "../services/open.js";
import type {
  Caller,
  Download,
  JsonSchema,
  ObjectSchema,
  Operation,
  OperationCall,
  Permission,
} from "../operations/types.js";
import { causeOf } from "../operations/tokens.js";
import { buildOpenApi } from "./openapi.js";

/** Where a request came in: the local socket (root or acc's user) or nginx's admin host. */
export type Origin = "local" | "nginx";

const ORIGIN = Symbol("acc.origin");
type MarkedRequest = IncomingMessage & { [ORIGIN]?: Origin };

declare module "fastify" {
  interface FastifyRequest {
    caller?: Caller;
  }
}

export interface ApiDeps {
  ctx: AccContext;
  operations: readonly Operation[];
  version: string;
  log(line: string): void;
  /**
   * Who calls through nginx (a bearer token; the admin UI's session cookie): a Caller, or an
   * ACC_UNAUTHORIZED / ACC_RATE_LIMITED error. The local socket needs none: its mode says who.
   */
  authenticate(request: FastifyRequest): Promise<Caller>;
  /** More routes on the same app (the admin UI, /metrics): registered before it is ready. */
  extend?(app: FastifyInstance): void | Promise<void>;
}

export interface Api {
  app: FastifyInstance;
  /** Handlers for the two listeners: the local socket and nginx's admin socket. */
  local: http.Server;
  nginx: http.Server;
}

export function originOf(request: FastifyRequest): Origin {
  return (request.raw as MarkedRequest)[ORIGIN] ?? "nginx";
}

/** The caller of a request: local is root's own; anything else is authenticated. */
export async function callerOf(
  request: FastifyRequest,
  deps: Pick<ApiDeps, "authenticate">,
): Promise<Caller> {
  request.caller ??=
    originOf(request) === "local" ? { kind: "local" } : await deps.authenticate(request);
  return request.caller;
}

export function permissionOf(op: Operation, input: object): Permission {
  return typeof op.permission === "function" ? op.permission(input) : op.permission;
}

/** Refuses (ACC_FORBIDDEN) an operation that the caller's scope does not allow. */
export function checkAllowed(caller: Caller, op: Operation, input: object): void {
  if (caller.kind === "local") return;
  const name = (input as { name?: unknown }).name;
  const permission = permissionOf(op, input);
  if (
    !allows(
      caller.scope,
      permission,
      op.instanceToken === true,
      typeof name === "string" ? name : undefined,
    )
  ) {
    throw forbidden(caller, op);
  }
}

function forbidden(caller: Extract<Caller, { kind: "token" }>, op: Operation): AccError {
  return new AccError("ACC_FORBIDDEN", `token ${caller.name} may not ${op.id}`, {
    hint: "an admin token can; acc token list shows the scopes",
  });
}

/**
 * Before the input is checked: a scope that no input could let through is refused first, so
 * that it learns nothing from the input's checks (an instance token, another name in the path).
 */
export function checkCallable(caller: Caller, op: Operation, params: object): void {
  if (caller.kind === "local") return;
  const { scope } = caller;
  const name = (params as { name?: unknown }).name;
  const fixed = typeof op.permission === "function" ? undefined : op.permission;
  const never =
    scope.kind === "instance"
      ? op.instanceToken !== true || (typeof name === "string" && name !== scope.name)
      : scope.kind === "read" && fixed !== undefined && fixed !== "read";
  if (never) throw forbidden(caller, op);
}

/** The error body, the same words as the CLI's one line. */
export function errorBody(error: AccError): {
  error: { code: string; message: string; hint?: string; details?: string };
} {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.hint !== undefined ? { hint: error.hint } : {}),
      ...(error.details !== undefined ? { details: error.details } : {}),
    },
  };
}

/** Where an operation's input comes from: the path, and the query (GET, DELETE) or a JSON body. */
function takesQuery(op: Operation): boolean {
  return op.method === "GET" || op.method === "DELETE";
}

/**
 * The route's schemas from the operation's input. The part an operation does not read is
 * declared empty (a query on a POST, a body on a DELETE), so that a field sent there is
 * refused rather than silently dropped or, worse, taken for the one in the path.
 */
function splitSchema(op: Operation): {
  params?: ObjectSchema;
  querystring: ObjectSchema;
  body?: ObjectSchema;
} {
  const pathKeys = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? "");
  const pick = (keys: string[]): ObjectSchema => ({
    type: "object",
    properties: Object.fromEntries(keys.map((key) => [key, op.input.properties[key] ?? {}])),
    required: (op.input.required ?? []).filter((key) => keys.includes(key)),
    additionalProperties: false,
  });
  const restKeys = Object.keys(op.input.properties).filter((key) => !pathKeys.includes(key));
  const query = takesQuery(op);
  return {
    ...(pathKeys.length > 0 ? { params: pick(pathKeys) } : {}),
    querystring: pick(query ? restKeys : []),
    // GET has no body (Fastify does not read one); a DELETE's must be empty.
    ...(op.method === "GET" ? {} : { body: pick(query ? [] : restKeys) }),
  };
}

/** JSON's own type of a value, in JSON Schema's words. */
function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function typeMatches(declared: unknown, value: unknown): boolean {
  if (declared === undefined) return true;
  const types = Array.isArray(declared) ? (declared as unknown[]) : [declared];
  const actual = jsonType(value);
  return types.some((t) => t === actual || (t === "number" && actual === "integer"));
}

/**
 * A JSON body is typed already: its values must have the declared types as sent. Ajv coerces
 * (as the query needs: everything there is text), and would take ["x"] for "x", "x" for ["x"],
 * null for "" or false: a client's mistake must be told, not guessed at.
 */
function checkBodyTypes(schema: ObjectSchema, body: unknown): AccError | undefined {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    const property = schema.properties[key];
    if (property === undefined) continue;
    const items = property.items as JsonSchema | undefined;
    const bad = !typeMatches(property.type, value)
      ? `must be ${String(property.type)}`
      : Array.isArray(value) &&
          items !== undefined &&
          !value.every((v) => typeMatches(items.type, v))
        ? `must be an array of ${String(items.type)}`
        : undefined;
    if (bad !== undefined) {
      return new AccError("ACC_INVALID", `invalid body ${key}: ${bad}`, {
        hint: "GET /api/v1/openapi.json describes every operation's input",
      });
    }
  }
  return undefined;
}

/** Ajv's complaint as acc's one line: the field and the value as given. */
function validationError(
  error: {
    validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[];
    validationContext?: string;
  },
  request: FastifyRequest,
): AccError {
  const first = error.validation?.[0];
  const path = (first?.instancePath ?? "").split("/").slice(1);
  const field =
    path.join(".") ||
    JSON.stringify(first?.params?.additionalProperty ?? first?.params?.missingProperty ?? "input");
  const context = error.validationContext;
  let value: unknown =
    context === "querystring"
      ? request.query
      : context === "body"
        ? request.body
        : context === "params"
          ? request.params
          : undefined;
  for (const key of path)
    value =
      typeof value === "object" && value !== null
        ? (value as Record<string, unknown>)[key]
        : undefined;
  const shown =
    path.length > 0 && value !== undefined
      ? ` ${showValue(typeof value === "string" ? value : (JSON.stringify(value) ?? ""))}`
      : "";
  return new AccError(
    "ACC_INVALID",
    `invalid ${context ?? "input"} ${field}${shown}: ${first?.message ?? "not valid"}`,
    { hint: "GET /api/v1/openapi.json describes every operation's input" },
  );
}

/** How often an open stream checks that its token still holds. */
const TOKEN_RECHECK_MS = 2_000;

/** An operation's follow() as server-sent events, until the client leaves. */
export async function sendStream(
  request: FastifyRequest,
  reply: FastifyReply,
  op: Operation,
  call: OperationCall,
  input: object,
  abort: AbortController,
): Promise<void> {
  if (!op.follow) throw new Error(`${op.id} has no stream`);
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-accel-buffering": "no",
  });
  request.raw.on("close", () => abort.abort());
  const send = (event: unknown): void => {
    res.write(`data: ${JSON.stringify(event)}\n\n`);
  };
  const sendError = (error: AccError): void => {
    res.write(`event: error\ndata: ${JSON.stringify(errorBody(error))}\n\n`);
  };
  // A comment line now and then: proxies keep the stream open, and a gone client is seen.
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
  // A token revoked (or expired) while its stream is open: the stream ends within seconds.
  const caller = call.caller;
  const recheck =
    caller.kind === "token"
      ? setInterval(() => {
          void import("../services/tokens.js")
            .then(({ tokenActive }) => tokenActive(call.ctx, caller.id))
            .then((active) => {
              if (active || abort.signal.aborted) return;
              sendError(
                new AccError("ACC_UNAUTHORIZED", `token ${caller.name} was revoked or expired`),
              );
              abort.abort();
            })
            // The store closing under a stopping server: the stream ends with it anyway.
            .catch(() => undefined);
        }, TOKEN_RECHECK_MS)
      : undefined;
  try {
    await op.follow(call, input, send);
  } catch (error) {
    if (!abort.signal.aborted)
      sendError(isAccError(error) ? error : new AccError("ACC_FAILED", String(error)));
  } finally {
    clearInterval(keepAlive);
    clearInterval(recheck);
    res.end();
  }
}

/** Every change made with a token is an event naming the token (the local socket is root). */
async function auditChange(
  ctx: AccContext,
  caller: Caller,
  op: Operation,
  input: object,
  outcome: "ok" | "failed",
  message: string,
): Promise<void> {
  if (caller.kind !== "token") return;
  const name = (input as { name?: unknown }).name;
  await ctx.store.addEvent(
    {
      instance: typeof name === "string" && op.path.includes("{name}") ? name : null,
      action: "api",
      outcome,
      cause: causeOf(caller),
      durationMs: null,
      message: `${op.id} by token ${caller.name} (${caller.id})${message ? `: ${message}` : ""}`,
    },
    ctx.now().toISOString(),
  );
}

/** A long operation's caller that asks to see it under way (the CLI on a terminal). */
function wantsProgress(request: FastifyRequest): boolean {
  return (request.headers.accept ?? "").includes("application/x-ndjson");
}

/**
 * A long operation answered as it goes: one JSON line per step ({"step"}) or piece of a
 * program's output ({"output"}), then {"result"} or {"error", "status"}. The status line is
 * 200 from the start, so the outcome is in the last line.
 */
async function sendWithProgress(
  reply: FastifyReply,
  ctx: AccContext,
  op: Operation,
  call: OperationCall,
  input: object,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "application/x-ndjson; charset=utf-8",
    "cache-control": "no-store",
    "x-accel-buffering": "no",
  });
  const line = (value: unknown): void => {
    res.write(`${JSON.stringify(value)}\n`);
  };
  const progress = {
    step: (text: string) => line({ step: text }),
    output: (text: string) => line({ output: text }),
  };
  try {
    // Services report through their context's progress: this call's own, for this call only.
    const scoped = { ...call, ctx: { ...call.ctx, progress }, progress };
    line({ result: await invokeOperation(ctx, op, scoped, input) });
  } catch (error) {
    const accError = isAccError(error)
      ? error
      : new AccError("ACC_FAILED", `internal error (this is a bug): ${String(error)}`);
    line({ ...errorBody(accError), status: httpStatusFor(accError.code) });
  } finally {
    res.end();
  }
}

const REFUSED_INPUT: readonly AccErrorCode[] = ["ACC_INVALID", "ACC_USAGE", "ACC_NOT_FOUND"];

/**
 * Runs an operation for a caller: its scope checked first, and a change made with a token
 * recorded as an event naming it. The API routes and the admin UI both call this.
 */
export async function invokeOperation(
  ctx: AccContext,
  op: Operation,
  call: OperationCall,
  input: object,
): Promise<unknown> {
  checkAllowed(call.caller, op, input);
  const change = permissionOf(op, input) !== "read";
  // The events of what it does name the token as their cause (token:NAME), not the CLI.
  const caller = call.caller;
  const run =
    caller.kind === "token" ? { ...call, ctx: { ...call.ctx, cause: causeOf(caller) } } : call;
  try {
    const output: unknown = await op.run(run, input);
    // A dry run (upgrade, prune, monitor) changed nothing: its event says so.
    const dryRun = (input as { dry_run?: unknown }).dry_run === true;
    if (change) await auditChange(ctx, call.caller, op, input, "ok", dryRun ? "dry run" : "");
    return output;
  } catch (error) {
    // Refused input, or nothing of that name: nothing changed, and no event says so (a caller
    // sending junk must not fill the feed).
    if (change && !REFUSED_INPUT.some((code) => isAccError(error, code)))
      await auditChange(
        ctx,
        call.caller,
        op,
        input,
        "failed",
        error instanceof Error ? error.message : String(error),
      );
    throw error;
  }
}

/**
 * A file as a download: its name (made by acc, quoted plainly; never the instance's text) in
 * content-disposition, and never sniffed as something a browser would render.
 */
export function sendDownload(
  reply: FastifyReply,
  contentType: string,
  download: Download,
): FastifyReply {
  const filename = download.filename.replace(/[^A-Za-z0-9._-]/g, "_");
  reply
    .code(200)
    .type(contentType)
    .header("content-disposition", `attachment; filename="${filename}"`)
    .header("x-content-type-options", "nosniff")
    .header("cache-control", "no-store");
  if (download.bytes !== undefined) reply.header("content-length", String(download.bytes));
  return reply.send(download.stream);
}

function registerOperation(app: FastifyInstance, op: Operation, deps: ApiDeps): void {
  const schema = splitSchema(op);
  app.route({
    method: op.method,
    url: `/api/v1${op.path.replace(/\{(\w+)\}/g, ":$1")}`,
    schema,
    // Who calls comes first: a caller without a token learns nothing, not even whether its
    // input would have been valid.
    onRequest: async (request) => {
      checkCallable(await callerOf(request, deps), op, request.params as object);
    },
    preValidation: (request, _reply, done) => {
      // ?follow=1 (or ?follow) as much as ?follow=true (Ajv's coercion takes only the words).
      const query = request.query as Record<string, unknown>;
      for (const [key, property] of Object.entries(schema.querystring.properties)) {
        if (property.type !== "boolean") continue;
        if (query[key] === "1" || query[key] === "") query[key] = "true";
        else if (query[key] === "0") query[key] = "false";
      }
      // No body (or an empty one) is an empty object: `curl -X POST .../start` is enough.
      if (schema.body !== undefined) {
        request.body ??= {};
        const mistyped = checkBodyTypes(schema.body, request.body);
        if (mistyped) return done(mistyped as FastifyError);
      }
      done();
    },
    handler: async (request, reply) => {
      // The path's parameters last: they name what the route acts on.
      const input = {
        ...((takesQuery(op) ? request.query : request.body) as object | undefined),
        ...(request.params as object),
      };
      const caller = await callerOf(request, deps);
      checkAllowed(caller, op, input);
      // acc.toml edited since: read again, as a CLI command on its own would.
      await refreshConfig(deps.ctx, process.env);
      const abort = new AbortController();
      const call: OperationCall = {
        ctx: deps.ctx,
        caller,
        signal: abort.signal,
        progress: { step: () => undefined },
      };
      if (op.stream && (input as { follow?: boolean }).follow === true) {
        await sendStream(request, reply, op, call, input, abort);
        return reply;
      }
      if (op.long && wantsProgress(request)) {
        await sendWithProgress(reply, deps.ctx, op, call, input);
        return reply;
      }
      const output = await invokeOperation(deps.ctx, op, call, input);
      if (op.download) return sendDownload(reply, op.download.contentType, output as Download);
      // Bytes, encoded once: a string would be measured for its length and encoded again.
      return reply
        .code(200)
        .type("application/json")
        .send(Buffer.from(JSON.stringify(output)));
    },
  });
}

/**
 * The API (and whatever `extend` adds) as one Fastify app, served by two listeners that the
 * caller binds: `local` (HOME/run/api.sock) and `nginx` (the admin host's socket).
 */
export async function createApi(deps: ApiDeps): Promise<Api> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const app = Fastify({
    logger: false,
    // A long path parameter reaches the operation's own check, which names it (400, the CLI's
    // words), rather than Fastify's bare 414 past 100 characters. Node caps a request's head
    // at 16 KiB anyway.
    maxParamLength: 16_384,
    // Unknown fields are refused, never dropped without a word.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: true } },
    serverFactory: (h) => {
      handler = h;
      return http.createServer();
    },
  });
  app.setErrorHandler((error, request, reply) => {
    const candidate = error as {
      validation?: [];
      validationContext?: string;
      statusCode?: number;
      message?: string;
    };
    const accError = isAccError(error)
      ? error
      : candidate.validation
        ? validationError(candidate, request)
        : candidate.statusCode !== undefined && candidate.statusCode < 500
          ? new AccError("ACC_INVALID", candidate.message ?? "bad request")
          : undefined;
    if (!accError) {
      deps.log(
        `api: internal error (this is a bug): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
      return reply.code(500).send({
        error: {
          code: "ACC_FAILED",
          message: `internal error (this is a bug): ${error instanceof Error ? error.message : String(error)}`,
        },
      });
    }
    if (accError.code === "ACC_RATE_LIMITED")
      reply.header("retry-after", String(accError.retryAfterSeconds ?? 60));
    if (accError.code === "ACC_UNAUTHORIZED") reply.header("www-authenticate", "Bearer");
    return reply.code(httpStatusFor(accError.code)).send(errorBody(accError));
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(
      errorBody(
        new AccError("ACC_NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`, {
          hint: "GET /api/v1/openapi.json lists the routes",
        }),
      ),
    ),
  );
  // An empty JSON body is an empty object (Fastify's own parser refuses it); anything else is
  // Fastify's parser, which refuses __proto__ and constructor keys.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") done(null, {});
    else void parseJson(request, text, done);
  });
  for (const op of deps.operations) registerOperation(app, op, deps);
  const document = buildOpenApi(deps.operations, deps.version);
  app.get(
    "/api/v1/openapi.json",
    {
      onRequest: async (request) => {
        await callerOf(request, deps);
      },
    },
    (_request, reply) => reply.type("application/json").send(document),
  );
  await deps.extend?.(app);
  await app.ready();
  const h = handler;
  if (!h) throw new Error("fastify did not call serverFactory");
  // requestTimeout 0: a restore of a big instance or a long setup may take more than Node's
  // default 300 s, and the answer comes when it is done.
  const listener = (origin: Origin) =>
    http.createServer({ requestTimeout: 0 }, (req, res) => {
      (req as MarkedRequest)[ORIGIN] = origin;
      h(req, res);
    });
  return { app, local: listener("local"), nginx: listener("nginx") };
}
