import { httpStatusFor, type AccErrorCode } from "../lib/errors.js";
import type { JsonSchema, Operation } from "../operations/types.js";

/** Codes any route may answer, besides the ones its operation declares. */
const COMMON_ERRORS: readonly AccErrorCode[] = [
  "ACC_INVALID",
  "ACC_UNAUTHORIZED",
  "ACC_FORBIDDEN",
  "ACC_RATE_LIMITED",
  "ACC_FAILED",
];

const ERROR_SCHEMA: JsonSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "string", description: "a stable ACC_* code" },
        message: { type: "string", description: "the one line the CLI prints" },
        hint: { type: "string" },
        details: { type: "string", description: "more lines, such as the end of a log" },
      },
    },
  },
};

const PROGRESS_LINE: JsonSchema = {
  type: "object",
  properties: {
    step: { type: "string" },
    output: { type: "string" },
    result: {},
    error: { type: "object" },
    status: { type: "integer" },
  },
};

function pathKeys(path: string): string[] {
  return [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? "");
}

function operationObject(op: Operation): Record<string, unknown> {
  const inPath = pathKeys(op.path);
  const required = new Set(op.input.required ?? []);
  const inQuery = op.method === "GET" || op.method === "DELETE";
  const parameters = Object.entries(op.input.properties)
    .filter(([key]) => inPath.includes(key) || inQuery)
    .map(([key, schema]) => ({
      name: key,
      in: inPath.includes(key) ? "path" : "query",
      required: inPath.includes(key) || required.has(key),
      schema,
      ...(typeof schema.description === "string" ? { description: schema.description } : {}),
    }));
  const bodyKeys = inQuery
    ? []
    : Object.keys(op.input.properties).filter((k) => !inPath.includes(k));
  const byStatus = new Map<number, AccErrorCode[]>();
  for (const code of [...new Set([...op.errors, ...COMMON_ERRORS])]) {
    const status = httpStatusFor(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, unknown> = {
    "200": op.download
      ? {
          description: "the file, as an attachment",
          content: { [op.download.contentType]: { schema: { type: "string", format: "binary" } } },
        }
      : op.stream
        ? {
            description: "the answer; with follow=true, server-sent events, each one event",
            content: {
              "application/json": { schema: op.output },
              "text/event-stream": { schema: op.stream.event },
            },
          }
        : op.long
          ? {
              description:
                "the answer, when done; with Accept: application/x-ndjson, one JSON line per step ({step} or {output}) as it goes, then {result} or {error, status}",
              content: {
                "application/json": { schema: op.output },
                "application/x-ndjson": { schema: PROGRESS_LINE },
              },
            }
          : { description: "the answer", content: { "application/json": { schema: op.output } } },
  };
  for (const [status, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    responses[String(status)] = {
      description: codes.join(", "),
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    };
  }
  const permission = typeof op.permission === "function" ? "read or secret" : op.permission;
  return {
    operationId: op.id,
    summary: op.summary,
    description: [
      `Permission: ${permission}${op.instanceToken ? " (an instance:NAME token may call it for NAME)" : ""}.`,
      op.long ? "Long: answered when done (seconds to minutes)." : "",
      op.cli ? `CLI: acc ${op.cli.name} ${op.cli.usage}` : "",
    ]
      .filter(Boolean)
      .join(" "),
    tags: [op.id.split(".")[0] ?? "acc"],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(bodyKeys.length > 0
      ? {
          requestBody: {
            required: bodyKeys.some((k) => required.has(k)),
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  properties: Object.fromEntries(bodyKeys.map((k) => [k, op.input.properties[k]])),
                  required: bodyKeys.filter((k) => required.has(k)),
                  additionalProperties: false,
                },
              },
            },
          },
        }
      : {}),
    responses,
  };
}

/** The OpenAPI 3.1 document of the API, made from the operations alone. */
export function buildOpenApi(operations: readonly Operation[], version: string): object {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const key = `/api/v1${op.path}`;
    paths[key] ??= {};
    paths[key][op.method.toLowerCase()] = operationObject(op);
  }
  paths["/api/v1/openapi.json"] = {
    get: {
      operationId: "api.openapi",
      summary: "This document.",
      responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": {} } } },
    },
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "acc API",
      version,
      description:
        "The API of acc (the Abilian Cloud Controller): the CLI is its client. Errors are `{ error: { code, message, hint } }` with the CLI's words.",
    },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: { Error: ERROR_SCHEMA },
    },
  };
}
