import { AccError } from "../lib/errors.js";
import type { ModelManifest, ParamType } from "./model.js";
import { showValue } from "./validate.js";

export const MAX_PARAM_LENGTH = 1024;
/** Random bytes behind a generated password: 18 bytes are 24 url-safe base64 characters. */
export const PASSWORD_BYTES = 18;

const PARAM_NAME_RE = /^[a-z][a-z0-9_]*$/;
// A lone surrogate cannot be written as UTF-8: it would come out as U+FFFD, a different value.
const LONE_SURROGATE_RE = /\p{Cs}/u;
const INT_RE = /^[0-9]{1,15}$/;
// Deliberately narrower than RFC 5322: no quotes, '$', ';', '{' or spaces, which real addresses
// do without and which could matter to whatever config the value is written into.
const EMAIL_RE =
  /^[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]$/;

const TYPE_WORDS: Record<ParamType, string> = {
  string: "text",
  password: "a password",
  int: "a whole number",
  bool: "true or false",
  email: "an email address",
};

export interface ResolvedParams {
  /** Every parameter the model declares, in its order; an optional one with no value is "". */
  values: Record<string, string>;
  /** Names of secret parameters: their values go to the 0600 env file only. */
  secrets: string[];
  /** Names of the passwords generated here, to be shown once. */
  generated: string[];
}

/**
 * C0, DEL, C1 and the Unicode line and paragraph separators: each can break a line-based file
 * (env file, ini, YAML) that a value is written into.
 */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return true;
  }
  return false;
}

/** What is wrong with a parameter value, or undefined when it is fine for the type. */
export function paramValueProblem(type: ParamType, value: string): string | undefined {
  if (value.length > MAX_PARAM_LENGTH) return `longer than ${MAX_PARAM_LENGTH} characters`;
  if (hasControlCharacter(value))
    return "control characters (newline, tab, NUL...) are not allowed";
  if (LONE_SURROGATE_RE.test(value)) return "not well-formed Unicode";
  switch (type) {
    case "string":
      return undefined;
    case "password":
      return value === "" ? "must not be empty" : undefined;
    case "int":
      return INT_RE.test(value) ? undefined : "expected a whole number of at most 15 digits";
    case "bool":
      return value === "true" || value === "false" ? undefined : 'expected "true" or "false"';
    case "email":
      return EMAIL_RE.test(value) && value.length <= 254
        ? undefined
        : "expected an email address such as admin@example.com";
  }
}

function knownParamsHint(manifest: ModelManifest): string {
  const known = Object.keys(manifest.params);
  return known.length === 0
    ? `model ${manifest.name} takes no parameters`
    : `known: ${known.join(", ")}`;
}

/** Refuses a value the model's parameter does not take (its type, or empty when required). */
export function checkParamValue(manifest: ModelManifest, name: string, value: string): void {
  const spec = manifest.params[name];
  if (spec === undefined) throw new Error(`bug: no parameter ${name} in model ${manifest.name}`);
  const problem =
    paramValueProblem(spec.type, value) ??
    (spec.required && value === "" ? "must not be empty" : undefined);
  if (problem === undefined) return;
  const shown = spec.secret ? "(secret, not shown)" : showValue(value);
  throw new AccError(
    "ACC_INVALID",
    `invalid value ${shown} for parameter ${name} of model ${manifest.name}: ${problem}`,
    {
      hint: `${name} takes ${TYPE_WORDS[spec.type]}${spec.description ? ` (${spec.description})` : ""}`,
    },
  );
}

/**
 * Checks the given parameters against the model, fills defaults and generates missing
 * passwords. A secret value is never shown in an error: the error could end up in a log.
 */
export function resolveParams(
  manifest: ModelManifest,
  given: Readonly<Record<string, string>>,
  generate: (bytes: number) => string,
): ResolvedParams {
  for (const name of Object.keys(given)) {
    // hasOwn, not `in`: "constructor" must not find Object.prototype's.
    if (!Object.hasOwn(manifest.params, name)) {
      throw new AccError(
        "ACC_INVALID",
        `unknown parameter ${showValue(name)} for model ${manifest.name}`,
        { hint: knownParamsHint(manifest) },
      );
    }
  }
  const values: Record<string, string> = {};
  const secrets: string[] = [];
  const generated: string[] = [];
  const missing: string[] = [];
  for (const [name, spec] of Object.entries(manifest.params)) {
    if (spec.secret) secrets.push(name);
    const value = Object.hasOwn(given, name) ? given[name] : undefined;
    if (value !== undefined) {
      checkParamValue(manifest, name, value);
      values[name] = value;
    } else if (spec.default !== undefined) {
      values[name] = spec.default;
    } else if (spec.type === "password") {
      const password = generate(PASSWORD_BYTES);
      if (paramValueProblem("password", password) !== undefined) {
        throw new Error(`generated password for ${name} is not a valid parameter value`);
      }
      values[name] = password;
      generated.push(name);
    } else if (spec.required) {
      missing.push(name);
    } else {
      values[name] = "";
    }
  }
  if (missing.length > 0) {
    const plural = missing.length > 1 ? "s" : "";
    throw new AccError(
      "ACC_INVALID",
      `missing required parameter${plural} ${missing.join(", ")} for model ${manifest.name}`,
      { hint: `give ${missing.map((name) => `--param ${name}=VALUE`).join(" ")}` },
    );
  }
  return { values, secrets, generated };
}

/** The values of the parameters that are not secret: what the store keeps. */
export function publicParamsOf(resolved: ResolvedParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(resolved.values)) {
    if (!resolved.secrets.includes(key)) out[key] = value;
  }
  return out;
}

/** Parses `--param NAME=VALUE` arguments; the value may hold '=' and may be empty. */
export function parseParamArgs(args: readonly string[]): Record<string, string> {
  const out = new Map<string, string>();
  for (const arg of args) {
    const eq = arg.indexOf("=");
    if (eq < 0) {
      throw new AccError("ACC_INVALID", `invalid --param ${showValue(arg)}: expected NAME=VALUE`, {
        hint: "use --param admin_email=me@example.com",
      });
    }
    const name = arg.slice(0, eq);
    if (!PARAM_NAME_RE.test(name)) {
      throw new AccError(
        "ACC_INVALID",
        // Not the whole argument: its value may be a password.
        `invalid parameter name ${showValue(name)} in --param NAME=VALUE`,
        { hint: "parameter names are lower-case letters, digits and '_', starting with a letter" },
      );
    }
    if (out.has(name)) {
      throw new AccError("ACC_INVALID", `parameter ${name} is given twice`, {
        hint: "give each --param once",
      });
    }
    out.set(name, arg.slice(eq + 1));
  }
  return Object.fromEntries(out);
}
