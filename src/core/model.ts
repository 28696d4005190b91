import { parse, TomlError } from "smol-toml";
import { AccError } from "../lib/errors.js";
import { parseDuration } from "./duration.js";
import { LIMIT_KEYS, parseLimit, type Limits } from "./limits.js";
import { hasControlCharacter, paramValueProblem } from "./model-params.js";
import { findPlaceholders, templateVariables } from "./template.js";
import { isValidModelName, showValue } from "./validate.js";

export const PARAM_TYPES = ["string", "int", "bool", "email", "password"] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

export interface ParamSpec {
  type: ParamType;
  required: boolean;
  /** Already valid for the type. Never set for passwords: a missing password is generated. */
  default?: string;
  /** Stored only in the instance's 0600 env file and not shown by default (passwords: true unless said otherwise). */
  secret: boolean;
  description?: string;
}

export interface TemplateSpec {
  /** Relative path inside the model folder (no "..", not absolute). */
  source: string;
  /** Relative path inside the instance's config/ folder (no "..", not absolute). */
  target: string;
  /** File mode, such as 0o600; the caller picks one when absent. */
  mode?: number;
}

export interface HealthCheck {
  /** HTTP path acc requests on the instance's port; 2xx means ready. */
  path: string;
  /** Statuses besides 2xx that also mean ready (`statuses = [302]`). */
  statuses?: number[];
  /** How long a start waits for the check to pass, in ms. */
  timeout?: number;
}

export interface SetupStep {
  /**
   * Run by /bin/sh from the code folder, with the app's environment, as the instance's user in
   * its sandbox: [setup] once at create, [upgrade] once per instance at an upgrade.
   */
  command: string;
  timeout?: number;
}

/**
 * A parsed and checked model.toml. Fields mirror the file's keys (as AccConfig mirrors
 * acc.toml) so that docs, error messages and --json output use one name; durations are in ms.
 */
export interface ModelManifest {
  name: string;
  version: string;
  description?: string;
  /** Run by /bin/sh from the model's code folder; PORT, HOST, DATA_DIR... are in its environment. */
  command: string;
  /** null means never stop for idleness; absent means the config's default. */
  idle_timeout?: number | null;
  start_timeout?: number;
  stop_timeout?: number;
  /** How long nginx and the waker wait for its answer (then a 504); whole seconds. */
  request_timeout?: number;
  database?: "postgres";
  /**
   * true: a start fails when the app listens on an address other hosts can reach (0.0.0.0, ::,
   * a public address) instead of loopback only; false or absent: it is only a warning.
   */
  strict_bind?: boolean;
  /** Static environment; values may hold {{ }} placeholders (see templateVariables). */
  env: Record<string, string>;
  health: HealthCheck;
  setup?: SetupStep;
  /** Run once per instance by `acc upgrade`, after the new code and config and before the start. */
  upgrade?: SetupStep;
  templates: TemplateSpec[];
  /** In the file's order. */
  params: Record<string, ParamSpec>;
  /**
   * The app takes its listening socket from acc (fd 3, LISTEN_FDS=1, as systemd passes it)
   * instead of binding PORT itself: the port then never becomes free for another user to take.
   */
  socket_activation: boolean;
  /** Paths of the host the app needs besides what the sandbox gives every instance. */
  sandbox: { read_only: string[]; read_write: string[] };
  /** Its cgroup's limits ([limits] memory, cpu, pids); acc.toml's defaults fill the rest. */
  limits: Limits;
}

/**
 * Variables acc sets itself, after the model's [env] (core/instance-env.ts), so a model's value
 * would be silently ignored: refusing them tells the model's author instead. ACC_* is reserved too.
 */
export const RESERVED_ENV_NAMES: readonly string[] = [
  "PORT",
  "HOST",
  "DATA_DIR",
  "CONFIG_DIR",
  "DATABASE_URL",
];

// Starting with a letter or digit keeps "." and ".." out: the version becomes part of a folder name.
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ENV_NAME_RE = /^[A-Z_][A-Z0-9_]*$/;
const PARAM_NAME_RE = /^[a-z][a-z0-9_]*$/;
const HEALTH_PATH_RE = /^\/[\x21-\x7e]*$/;
const MODE_RE = /^0?[0-7]{3}$/;

export { isValidModelName };

// ---------------------------------------------------------------------------------------------
// Where a key is in the text. smol-toml gives positions for syntax errors only, so for schema
// errors the key's line is found again by a light scan of headers and `key =` lines.

type KeyPath = readonly (string | number)[];

interface KeyLine {
  path: string[];
  line: number;
}

const KEY_PART = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')`;
const DOTTED_KEY = String.raw`${KEY_PART}(?:\s*\.\s*${KEY_PART})*`;
const ARRAY_HEADER_RE = new RegExp(String.raw`^\s*\[\[\s*(${DOTTED_KEY})\s*\]\]`);
const TABLE_HEADER_RE = new RegExp(String.raw`^\s*\[\s*(${DOTTED_KEY})\s*\]`);
const KEY_LINE_RE = new RegExp(String.raw`^\s*(${DOTTED_KEY})\s*=(.*)$`);
const KEY_PART_RE = new RegExp(KEY_PART, "g");

function splitKey(dotted: string): string[] {
  return [...dotted.matchAll(KEY_PART_RE)].map(([part]) => {
    if (part.startsWith("'")) return part.slice(1, -1);
    if (part.startsWith('"')) {
      try {
        return JSON.parse(part) as string;
      } catch {
        // A TOML escape JSON does not know (\e, \x..): the raw text is close enough to find a line.
        return part.slice(1, -1);
      }
    }
    return part;
  });
}

function countOf(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

function indexKeyLines(text: string): KeyLine[] {
  const out: KeyLine[] = [];
  const arrayCounts = new Map<string, number>();
  let table: string[] = [];
  let openString: '"""' | "'''" | undefined;
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    if (openString !== undefined) {
      if (countOf(raw, openString) % 2 === 1) openString = undefined;
      return;
    }
    const arrayHeader = ARRAY_HEADER_RE.exec(raw);
    if (arrayHeader?.[1] !== undefined) {
      const parts = splitKey(arrayHeader[1]);
      const key = parts.join("\0");
      const index = arrayCounts.get(key) ?? 0;
      arrayCounts.set(key, index + 1);
      table = [...parts, String(index)];
      out.push({ path: table, line });
      return;
    }
    const tableHeader = TABLE_HEADER_RE.exec(raw);
    if (tableHeader?.[1] !== undefined) {
      table = splitKey(tableHeader[1]);
      out.push({ path: table, line });
      return;
    }
    const keyLine = KEY_LINE_RE.exec(raw);
    if (keyLine?.[1] !== undefined) {
      out.push({ path: [...table, ...splitKey(keyLine[1])], line });
      const value = keyLine[2] ?? "";
      if (countOf(value, '"""') % 2 === 1) openString = '"""';
      else if (countOf(value, "'''") % 2 === 1) openString = "'''";
    }
  });
  return out;
}

/**
 * The line of a key in a TOML text, such as ["params", "admin_email", "type"] or
 * ["templates", 1, "source"]; for a missing key, the line of the nearest table that holds it.
 */
export function findKeyLine(text: string, path: KeyPath): number | undefined {
  const target = path.map(String);
  let best: KeyLine | undefined;
  let bestScore = 0;
  for (const entry of indexKeyLines(text)) {
    let score = 0;
    while (score < target.length && entry.path[score] === target[score]) score++;
    // A line for a deeper key than the one asked about is a worse answer than the key itself.
    if (score === target.length && entry.path.length === target.length) return entry.line;
    if (score > bestScore) {
      best = entry;
      bestScore = score;
    }
  }
  return best?.line;
}

// ---------------------------------------------------------------------------------------------
// Schema checks

const TOP_KEYS = [
  "name",
  "version",
  "description",
  "command",
  "idle_timeout",
  "start_timeout",
  "stop_timeout",
  "request_timeout",
  "database",
  "strict_bind",
  "env",
  "health",
  "setup",
  "upgrade",
  "templates",
  "params",
  "socket_activation",
  "sandbox",
  "limits",
] as const;

type Table = Record<string, unknown>;

interface Reader {
  text: string;
  source: string;
}

function showPath(path: KeyPath): string {
  return path
    .map((part, i) => (typeof part === "number" ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join("");
}

function modelError(reader: Reader, path: KeyPath, what: string, hint?: string): AccError {
  const line = path.length > 0 ? findKeyLine(reader.text, path) : undefined;
  const where = line === undefined ? reader.source : `${reader.source}:${line}`;
  return new AccError("ACC_MODEL", `${where}: ${what}`, hint === undefined ? {} : { hint });
}

function isTable(value: unknown): value is Table {
  return (
    typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date)
  );
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + cost,
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function checkKeys(reader: Reader, table: Table, path: KeyPath, known: readonly string[]): void {
  for (const key of Object.keys(table)) {
    if (known.includes(key)) continue;
    const near = known.find((k) => editDistance(k, key) <= 2);
    const where = path.length === 0 ? "" : ` in ${showPath(path)}`;
    // A top-level key written below a [table] header belongs to that table in TOML.
    const misplaced =
      path.length > 0 && (TOP_KEYS as readonly string[]).includes(key)
        ? `top-level keys go above the first [table]; `
        : "";
    const suggestion = near === undefined ? "" : `did you mean "${near}"? `;
    throw modelError(
      reader,
      [...path, key],
      `unknown key ${showValue(key)}${where}`,
      `${misplaced}${suggestion}known keys: ${known.join(", ")}`,
    );
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (isTable(value)) return "a table";
  if (value instanceof Date) return "a date";
  return `a ${typeof value}`;
}

function readTable(
  reader: Reader,
  parent: Table,
  path: KeyPath,
  required: boolean,
): Table | undefined {
  const key = path[path.length - 1] as string;
  const value = parent[key];
  if (value === undefined) {
    if (required) throw modelError(reader, path, `missing required table [${showPath(path)}]`);
    return undefined;
  }
  if (!isTable(value)) {
    throw modelError(reader, path, `${showPath(path)} must be a table, not ${describe(value)}`);
  }
  return value;
}

function readString(
  reader: Reader,
  table: Table,
  path: KeyPath,
  required: boolean,
): string | undefined {
  const key = path[path.length - 1] as string;
  const value = table[key];
  if (value === undefined) {
    if (required) throw modelError(reader, path, `missing required key ${showPath(path)}`);
    return undefined;
  }
  if (typeof value !== "string") {
    throw modelError(
      reader,
      path,
      `${showPath(path)} must be a string, not ${describe(value)}`,
      "quote the value",
    );
  }
  return value;
}

/** A one-line string: no control characters, since it ends up in line-based files and tables. */
function readLine(reader: Reader, table: Table, path: KeyPath, required: true): string;
function readLine(reader: Reader, table: Table, path: KeyPath, required: false): string | undefined;
function readLine(
  reader: Reader,
  table: Table,
  path: KeyPath,
  required: boolean,
): string | undefined {
  const value = readString(reader, table, path, required);
  if (value === undefined) return undefined;
  if (hasControlCharacter(value)) {
    throw modelError(
      reader,
      path,
      `${showPath(path)} holds a control character (newline, tab...): ${showValue(value)}`,
    );
  }
  if (required && value.trim() === "")
    throw modelError(reader, path, `${showPath(path)} must not be empty`);
  return value;
}

function readBool(reader: Reader, table: Table, path: KeyPath): boolean | undefined {
  const value = table[path[path.length - 1] as string];
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") {
    throw modelError(
      reader,
      path,
      `${showPath(path)} must be true or false, not ${describe(value)}`,
    );
  }
  return value;
}

function readDuration(
  reader: Reader,
  table: Table,
  path: KeyPath,
  allowNever: boolean,
): number | null | undefined {
  const value = table[path[path.length - 1] as string];
  if (value === undefined) return undefined;
  const hint = `use a duration such as "30s", "15m" or "2h"${allowNever ? ' or "never"' : ""}`;
  if (typeof value !== "string") {
    throw modelError(
      reader,
      path,
      `${showPath(path)} must be a string, not ${describe(value)}`,
      hint,
    );
  }
  let ms: number | null;
  try {
    ms = parseDuration(value, showPath(path));
  } catch (error) {
    if (error instanceof AccError) throw modelError(reader, path, error.message, hint);
    throw error;
  }
  if ((ms === null && !allowNever) || ms === 0) {
    throw modelError(reader, path, `invalid ${showPath(path)} ${showValue(value)}`, hint);
  }
  return ms;
}

/** `[health] statuses`: HTTP statuses (100-599) that pass the check besides 2xx. */
function readHealthStatuses(reader: Reader, health: Table): number[] | undefined {
  const path: KeyPath = ["health", "statuses"];
  const value = health.statuses;
  if (value === undefined) return undefined;
  const hint = "use a list of HTTP statuses, such as [200, 302]";
  if (!Array.isArray(value)) {
    throw modelError(
      reader,
      path,
      `health.statuses must be an array, not ${describe(value)}`,
      hint,
    );
  }
  for (const status of value as unknown[]) {
    if (typeof status !== "number" || !Number.isInteger(status) || status < 100 || status > 599) {
      throw modelError(
        reader,
        path,
        `invalid status ${showValue(typeof status === "string" ? status : String(status))} in health.statuses`,
        hint,
      );
    }
  }
  return [...new Set(value as number[])];
}

/** A relative path that stays inside its folder: no absolute path, no "." or ".." part. */
function readRelativePath(reader: Reader, table: Table, path: KeyPath): string {
  const value = readLine(reader, table, path, true);
  const parts = value.split("/");
  if (
    value.startsWith("/") ||
    value.includes("\\") ||
    value.length > 255 ||
    parts.some((part) => part === "" || part === "." || part === "..")
  ) {
    throw modelError(
      reader,
      path,
      `${showPath(path)} must be a relative path inside its folder: ${showValue(value)}`,
      'use a path such as "templates/app.ini", without "..", "." or a leading "/"',
    );
  }
  return value;
}

// Folders the sandbox builds itself, or that would open the host to the app.
const SANDBOX_OWN = ["/", "/proc", "/dev", "/sys", "/tmp", "/run", "/usr", "/etc", "/var/tmp"];

/** Absolute paths of the host to bind into the sandbox: plain characters, no "." or "..". */
function readSandboxPaths(reader: Reader, table: Table, path: KeyPath): string[] {
  const raw = table[path[path.length - 1] as string];
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    throw modelError(
      reader,
      path,
      `${showPath(path)} must be an array of paths, not ${describe(raw)}`,
    );
  }
  return raw.map((value: unknown, index) => {
    const where = [...path, index];
    const text = typeof value === "string" ? value : undefined;
    if (
      text === undefined ||
      !/^\/[A-Za-z0-9._/+@-]*$/.test(text) ||
      text.split("/").some((part) => part === "." || part === "..") ||
      text.length > 255
    ) {
      throw modelError(
        reader,
        where,
        `invalid ${showPath(path)}[${index}] ${showValue(String(value))}`,
        'use an absolute path of letters, digits and . _ - + @ /, such as "/srv/shared"',
      );
    }
    const clean = text.replace(/\/+$/, "") || "/";
    if (SANDBOX_OWN.includes(clean) || clean.startsWith("/proc/") || clean.startsWith("/sys/")) {
      throw modelError(
        reader,
        where,
        `${showPath(path)}[${index}] ${showValue(text)} is not a path a model may bind`,
        `the sandbox makes ${SANDBOX_OWN.join(", ")} itself`,
      );
    }
    return clean;
  });
}

function readParams(reader: Reader, root: Table): Record<string, ParamSpec> {
  const table = readTable(reader, root, ["params"], false);
  const params: Record<string, ParamSpec> = {};
  if (table === undefined) return params;
  for (const [name, raw] of Object.entries(table)) {
    const path = ["params", name];
    if (!PARAM_NAME_RE.test(name) || name.length > 64) {
      throw modelError(
        reader,
        path,
        `invalid parameter name ${showValue(name)}`,
        "use a lower-case letter, then lower-case letters, digits and '_' (at most 64)",
      );
    }
    if (!isTable(raw)) {
      throw modelError(reader, path, `params.${name} must be a table, not ${describe(raw)}`);
    }
    checkKeys(reader, raw, path, ["type", "required", "default", "secret", "description"]);
    const typeName = readString(reader, raw, [...path, "type"], true) as string;
    const type = PARAM_TYPES.find((t) => t === typeName);
    if (type === undefined) {
      throw modelError(
        reader,
        [...path, "type"],
        `params.${name}.type must be one of ${PARAM_TYPES.join(", ")}, not ${showValue(typeName)}`,
      );
    }
    const spec: ParamSpec = {
      type,
      required: readBool(reader, raw, [...path, "required"]) ?? false,
      secret: readBool(reader, raw, [...path, "secret"]) ?? type === "password",
    };
    const description = readLine(reader, raw, [...path, "description"], false);
    if (description !== undefined) spec.description = description;
    const defaultValue = readParamDefault(reader, raw, [...path, "default"], type);
    if (defaultValue !== undefined) spec.default = defaultValue;
    params[name] = spec;
  }
  return params;
}

function readParamDefault(
  reader: Reader,
  table: Table,
  path: KeyPath,
  type: ParamType,
): string | undefined {
  const raw = table.default;
  if (raw === undefined) return undefined;
  if (type === "password") {
    throw modelError(
      reader,
      path,
      `${showPath(path)}: a password parameter cannot have a default`,
      "leave it out: acc generates a password that is not given",
    );
  }
  // TOML's own integers and booleans read naturally for int and bool parameters.
  let value: string;
  if (typeof raw === "string") value = raw;
  else if (type === "int" && typeof raw === "number" && Number.isInteger(raw)) value = String(raw);
  else if (type === "bool" && typeof raw === "boolean") value = String(raw);
  else {
    const expected =
      type === "int" ? "a whole number" : type === "bool" ? "true or false" : "a string";
    throw modelError(reader, path, `${showPath(path)} must be ${expected}, not ${describe(raw)}`);
  }
  const problem = paramValueProblem(type, value);
  if (problem !== undefined) {
    throw modelError(
      reader,
      path,
      `${showPath(path)} ${showValue(value)} is not valid: ${problem}`,
    );
  }
  return value;
}

function readEnv(
  reader: Reader,
  root: Table,
  variables: readonly string[],
): Record<string, string> {
  const table = readTable(reader, root, ["env"], false);
  const env: Record<string, string> = {};
  if (table === undefined) return env;
  for (const name of Object.keys(table)) {
    const path = ["env", name];
    if (!ENV_NAME_RE.test(name)) {
      throw modelError(
        reader,
        path,
        `invalid environment variable name ${showValue(name)}`,
        "use upper-case letters, digits and '_', not starting with a digit",
      );
    }
    if (RESERVED_ENV_NAMES.includes(name) || name.startsWith("ACC_")) {
      throw modelError(
        reader,
        path,
        `env.${name} is set by acc itself`,
        `a model cannot set ${RESERVED_ENV_NAMES.join(", ")} or ACC_*; use a placeholder such as {{ port }} in another variable`,
      );
    }
    const value = readString(reader, table, path, true) as string;
    if (hasControlCharacter(value)) {
      throw modelError(reader, path, `env.${name} holds a control character: ${showValue(value)}`);
    }
    for (const placeholder of findPlaceholders(value)) {
      if (!variables.includes(placeholder.name)) {
        throw modelError(
          reader,
          path,
          `env.${name} uses unknown placeholder {{ ${placeholder.name} }}`,
          `known: ${variables.join(", ")}`,
        );
      }
    }
    env[name] = value;
  }
  return env;
}

function readTemplates(reader: Reader, root: Table): TemplateSpec[] {
  const raw = root.templates;
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    throw modelError(
      reader,
      ["templates"],
      `templates must be an array of tables ([[templates]]), not ${describe(raw)}`,
    );
  }
  const targets = new Map<string, number>();
  return raw.map((item: unknown, index): TemplateSpec => {
    const path = ["templates", index];
    if (!isTable(item)) {
      throw modelError(reader, path, `templates[${index}] must be a table, not ${describe(item)}`);
    }
    checkKeys(reader, item, path, ["source", "target", "mode"]);
    const spec: TemplateSpec = {
      source: readRelativePath(reader, item, [...path, "source"]),
      target: readRelativePath(reader, item, [...path, "target"]),
    };
    const previous = targets.get(spec.target);
    if (previous !== undefined) {
      throw modelError(
        reader,
        [...path, "target"],
        `templates[${index}].target ${showValue(spec.target)} is already the target of templates[${previous}]`,
      );
    }
    targets.set(spec.target, index);
    const mode = readString(reader, item, [...path, "mode"], false);
    if (mode !== undefined) {
      if (!MODE_RE.test(mode)) {
        throw modelError(
          reader,
          [...path, "mode"],
          `invalid templates[${index}].mode ${showValue(mode)}`,
          'use an octal file mode as a string, such as "0600" or "0644"',
        );
      }
      spec.mode = parseInt(mode, 8);
    }
    return spec;
  });
}

function parseToml(text: string, source: string): Table {
  try {
    return parse(text);
  } catch (error) {
    if (error instanceof TomlError) {
      // smol-toml's message carries a code excerpt after its first line; the error stays one line.
      const what = (error.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
      throw new AccError(
        "ACC_MODEL",
        `${source}:${error.line}: invalid TOML: ${what} (column ${error.column})`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}

/** Parses and checks a model.toml; `source` names the file in error messages. */
export function parseManifest(text: string, source: string): ModelManifest {
  const reader: Reader = { text, source };
  const root = parseToml(text, source);
  checkKeys(reader, root, [], TOP_KEYS);

  const name = readLine(reader, root, ["name"], true);
  if (!isValidModelName(name)) {
    throw modelError(
      reader,
      ["name"],
      `invalid model name ${showValue(name)}`,
      "use a DNS label: 1 to 63 characters a-z, 0-9 and '-', not starting or ending with '-'",
    );
  }
  const version = readLine(reader, root, ["version"], true);
  if (!VERSION_RE.test(version)) {
    throw modelError(
      reader,
      ["version"],
      `invalid version ${showValue(version)}`,
      "use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 64)",
    );
  }
  const manifest: ModelManifest = {
    name,
    version,
    command: readLine(reader, root, ["command"], true),
    env: {},
    health: { path: "/" },
    templates: [],
    params: {},
    socket_activation: false,
    sandbox: { read_only: [], read_write: [] },
    limits: {},
  };
  const description = readLine(reader, root, ["description"], false);
  if (description !== undefined) manifest.description = description;

  const idle = readDuration(reader, root, ["idle_timeout"], true);
  if (idle !== undefined) manifest.idle_timeout = idle;
  const start = readDuration(reader, root, ["start_timeout"], false);
  if (typeof start === "number") manifest.start_timeout = start;
  const stop = readDuration(reader, root, ["stop_timeout"], false);
  if (typeof stop === "number") manifest.stop_timeout = stop;
  const request = readDuration(reader, root, ["request_timeout"], false);
  if (typeof request === "number") {
    if (request % 1000 !== 0) {
      throw modelError(
        reader,
        ["request_timeout"],
        "request_timeout must be whole seconds (nginx counts in seconds)",
        'use a duration such as "30s", "5m" or "1h"',
      );
    }
    manifest.request_timeout = request;
  }

  const database = readString(reader, root, ["database"], false);
  if (database !== undefined) {
    if (database !== "postgres") {
      throw modelError(
        reader,
        ["database"],
        `invalid database ${showValue(database)}`,
        'only "postgres" is supported',
      );
    }
    manifest.database = database;
  }

  const strictBind = readBool(reader, root, ["strict_bind"]);
  if (strictBind !== undefined) manifest.strict_bind = strictBind;

  const health = readTable(reader, root, ["health"], true) as Table;
  checkKeys(reader, health, ["health"], ["path", "timeout", "statuses"]);
  const healthPath = readString(reader, health, ["health", "path"], true) as string;
  if (!HEALTH_PATH_RE.test(healthPath) || healthPath.length > 1024) {
    throw modelError(
      reader,
      ["health", "path"],
      `invalid health.path ${showValue(healthPath)}`,
      'use a URL path starting with "/", without spaces or control characters, such as "/healthz"',
    );
  }
  manifest.health.path = healthPath;
  const healthTimeout = readDuration(reader, health, ["health", "timeout"], false);
  if (typeof healthTimeout === "number") manifest.health.timeout = healthTimeout;
  const statuses = readHealthStatuses(reader, health);
  if (statuses !== undefined) manifest.health.statuses = statuses;

  for (const key of ["setup", "upgrade"] as const) {
    const step = readTable(reader, root, [key], false);
    if (step === undefined) continue;
    checkKeys(reader, step, [key], ["command", "timeout"]);
    manifest[key] = { command: readLine(reader, step, [key, "command"], true) };
    const timeout = readDuration(reader, step, [key, "timeout"], false);
    if (typeof timeout === "number") manifest[key].timeout = timeout;
  }

  manifest.socket_activation = readBool(reader, root, ["socket_activation"]) ?? false;
  const sandbox = readTable(reader, root, ["sandbox"], false);
  if (sandbox !== undefined) {
    checkKeys(reader, sandbox, ["sandbox"], ["read_only", "read_write"]);
    manifest.sandbox = {
      read_only: readSandboxPaths(reader, sandbox, ["sandbox", "read_only"]),
      read_write: readSandboxPaths(reader, sandbox, ["sandbox", "read_write"]),
    };
  }

  const limits = readTable(reader, root, ["limits"], false);
  if (limits !== undefined) {
    checkKeys(reader, limits, ["limits"], LIMIT_KEYS);
    for (const key of LIMIT_KEYS) {
      const raw = limits[key];
      if (raw === undefined) continue;
      if (typeof raw !== "string" && typeof raw !== "number") {
        throw modelError(reader, ["limits", key], `limits.${key} must be a string or a number`);
      }
      let value: number | undefined;
      try {
        value = parseLimit(key, raw, "model.toml");
      } catch (error) {
        if (!(error instanceof AccError)) throw error;
        throw modelError(reader, ["limits", key], error.message, error.hint);
      }
      if (value !== undefined) manifest.limits[key] = value;
    }
  }

  manifest.templates = readTemplates(reader, root);
  manifest.params = readParams(reader, root);
  manifest.env = readEnv(reader, root, templateVariables(manifest));
  return manifest;
}
