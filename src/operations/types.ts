/**
 * One definition per operation (design.md "Layers"): its input and output schemas, its errors,
 * its permission, its HTTP route, its CLI command and how a person reads its answer. The CLI
 * (src/operations/cli.ts), the API routes (src/server/api.ts) and the OpenAPI document
 * (src/server/openapi.ts) are all made from these objects.
 *
 * This file and the operation files are loaded by the CLI client too: they import only pure
 * code at the top; what runs an operation (services/) is imported inside `run`, so the client
 * bundle never loads it. Schemas are plain JSON Schema literals for the same reason (TypeBox's
 * builder alone costs the client ~70 ms at startup here).
 */
import type { AccErrorCode } from "../lib/errors.js";
import type { AccContext, Progress } from "../services/context.js";
import type { CliEnv, CommandResult, OptionSpecs, ParsedArgs } from "../cli/command.js";

/** A JSON Schema (2020-12, as OpenAPI 3.1 takes it): plain data. */
export type JsonSchema = { readonly [key: string]: unknown };

export interface ObjectSchema extends JsonSchema {
  readonly type: "object";
  readonly properties: { readonly [key: string]: JsonSchema };
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean;
}

/**
 * What a caller must hold:
 * - read: admin, read tokens (and instance:NAME tokens when `instanceToken`);
 * - change: admin (and instance:NAME tokens when `instanceToken`);
 * - secret: admin only (secrets, tokens).
 */
export type Permission = "read" | "change" | "secret";

/** Who calls: the local socket (root or acc's service user) or a token through nginx. */
export type Caller =
  { kind: "local" } | { kind: "token"; id: string; name: string; scope: TokenScope };

export type TokenScope = { kind: "admin" } | { kind: "read" } | { kind: "instance"; name: string };

export interface OperationCall {
  ctx: AccContext;
  caller: Caller;
  /** Aborted when the client goes away (streams end). */
  signal: AbortSignal;
  progress: Progress;
}

/** What an operation with `download` answers: the bytes, and a name for the saved file. */
export interface Download {
  filename: string;
  stream: NodeJS.ReadableStream;
  /** Known in advance: sent as content-length. */
  bytes?: number;
}

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RenderEnv {
  now: Date;
}

export interface CliSpec<I, O> {
  name: string;
  /** Usage line after `acc NAME`. */
  usage: string;
  /** Lines of help after the usage: one per option. */
  help: string[];
  options: OptionSpecs;
  positionals: { min: number; max: number; names: string };
  json: boolean;
  /**
   * direct: always runs in this process, even when acc server is up (status, doctor: they must
   * work when it is down, and they look at the server themselves).
   */
  mode?: "client" | "direct";
  /** The command line's arguments as the operation's input; a mistake is an ACC_USAGE error. */
  input(args: ParsedArgs): I;
  /** What a person reads (and the exit code, when the answer itself says the command failed). */
  render(output: O, input: I, env: RenderEnv): Omit<CommandResult, "data">;
  /** Asked before the call (destroy's confirmation): a result ends the command there. */
  before?(input: I, cli: CliEnv): Promise<CommandResult | undefined>;
  /**
   * With --json to a pipe or file, the API's answer is copied to stdout as it comes, never
   * parsed: only for an answer that render() draws no exit code from.
   */
  pipeJson?: boolean;
  /** For streams (`follow` in the input): one event as a person reads it. */
  renderEvent?(event: unknown): string;
  /** For streams: where following starts, from the first answer (a log's size, an event id). */
  followFrom?(output: O): Partial<I>;
}

// The registry holds operations of every input and output type: `any` here only, where a list
// of them meets one generic signature (unknown would refuse each operation's own run()).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface Operation<I = any, O = any> {
  /** "instance.start": a noun and a verb. */
  id: string;
  summary: string;
  method: HttpMethod;
  /** Under /api/v1, with {name} path parameters, which are input properties. */
  path: string;
  /** Path parameters are named in the path; the rest is the query (GET, DELETE) or a JSON body. */
  input: ObjectSchema;
  output: JsonSchema;
  /** The codes it may raise (beyond the ones every route may: auth, rate limit, internal). */
  errors: readonly AccErrorCode[];
  permission: Permission | ((input: I) => Permission);
  /** An instance:NAME token may call it for NAME (its input's `name`). */
  instanceToken?: boolean;
  /** Takes seconds to minutes (create, start, backup...): answered when done. */
  long?: boolean;
  /** With `follow` in its input, the answer is a stream of server-sent events, each one `event`. */
  stream?: { event: JsonSchema };
  /**
   * The answer is a file to download, not JSON: `run` gives a Download, which the HTTP layer
   * streams with a content-disposition naming `filename` (`output` then describes the file).
   */
  download?: { contentType: string };
  run(call: OperationCall, input: I): Promise<O>;
  /** For streams: sends each event until the signal aborts. */
  follow?(call: OperationCall, input: I, send: (event: unknown) => void): Promise<void>;
  cli?: CliSpec<I, O>;
}
