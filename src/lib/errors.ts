/** Stable codes for errors a user can reach; bin/ and the HTTP layer map them in one place. */
export type AccErrorCode =
  | "ACC_USAGE" // bad command line
  | "ACC_INVALID" // bad input value (name, host, param, config)
  | "ACC_NOT_FOUND" // no such instance or model
  | "ACC_CONFLICT" // name, host or port already taken
  | "ACC_BUSY" // another operation holds the instance's lease
  | "ACC_STATE" // the operation does not apply in the instance's current state
  | "ACC_NOT_BOOTED" // acc's supervisord is not running
  | "ACC_START_FAILED"
  | "ACC_STOP_FAILED"
  | "ACC_NGINX" // nginx refused a config change or a reload
  | "ACC_SUPERVISOR"
  | "ACC_MODEL" // a model's manifest is invalid
  | "ACC_ENV" // something missing on the machine (binary, permission)
  | "ACC_UNAUTHORIZED" // API: no token, or one that is unknown, revoked or expired
  | "ACC_FORBIDDEN" // API: the token's scope does not allow this operation
  | "ACC_RATE_LIMITED" // API: too many failed authentications from this source
  | "ACC_FAILED"; // any other operation failure

export interface AccErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Extra lines shown after the message, such as the last lines of a log. */
  details?: string;
  /** When trying again makes sense (ACC_RATE_LIMITED): HTTP's Retry-After. */
  retryAfterSeconds?: number;
}

export class AccError extends Error {
  readonly code: AccErrorCode;
  readonly hint: string | undefined;
  readonly details: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: AccErrorCode, message: string, options: AccErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AccError";
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isAccError(error: unknown, code?: AccErrorCode): error is AccError {
  return error instanceof AccError && (code === undefined || error.code === code);
}

/** Exit codes of the command line contract (design.md). */
export function exitCodeFor(error: unknown): number {
  if (!(error instanceof AccError)) return 1;
  switch (error.code) {
    case "ACC_USAGE":
    case "ACC_INVALID":
    case "ACC_CONFLICT":
      return 2;
    case "ACC_NOT_FOUND":
      return 3;
    default:
      return 1;
  }
}

/**
 * HTTP statuses of the API (the same codes as the exit codes, mapped here alone): bad input
 * 400, not found 404, busy or a state that does not allow it 409, failures 500.
 */
export function httpStatusFor(code: AccErrorCode): number {
  switch (code) {
    case "ACC_USAGE":
    case "ACC_INVALID":
      return 400;
    case "ACC_UNAUTHORIZED":
      return 401;
    case "ACC_FORBIDDEN":
      return 403;
    case "ACC_NOT_FOUND":
      return 404;
    case "ACC_CONFLICT":
    case "ACC_BUSY":
    case "ACC_STATE":
      return 409;
    case "ACC_RATE_LIMITED":
      return 429;
    case "ACC_NOT_BOOTED":
      return 503;
    default:
      return 500;
  }
}

/** The error codes an answer may carry, for the OpenAPI document. */
export const ALL_ERROR_CODES: readonly AccErrorCode[] = [
  "ACC_USAGE",
  "ACC_INVALID",
  "ACC_NOT_FOUND",
  "ACC_CONFLICT",
  "ACC_BUSY",
  "ACC_STATE",
  "ACC_NOT_BOOTED",
  "ACC_START_FAILED",
  "ACC_STOP_FAILED",
  "ACC_NGINX",
  "ACC_SUPERVISOR",
  "ACC_MODEL",
  "ACC_ENV",
  "ACC_UNAUTHORIZED",
  "ACC_FORBIDDEN",
  "ACC_RATE_LIMITED",
  "ACC_FAILED",
];

/** Node's errno errors, narrowed so a caller can check one specific code. */
export function hasErrno(error: unknown, code: string): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === code;
}

export function isAccErrorCode(code: unknown): code is AccErrorCode {
  return typeof code === "string" && (ALL_ERROR_CODES as readonly string[]).includes(code);
}

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
