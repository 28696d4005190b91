import type { HomePaths } from "../../core/paths.js";
import { isValidInstanceName } from "../../core/validate.js";

/** One of acc's own services (nginx, `acc server`), declared in the main config and autostarted. */
export interface ServiceProgram {
  name: string;
  command: string[];
  directory?: string;
  user?: string;
  /** stdout and stderr both go here. */
  logFile: string;
  stopTimeoutSec?: number;
  stopSignal?: "TERM" | "QUIT" | "INT";
  env?: Record<string, string>;
  /**
   * Makes it an event listener subscribed to these event types: its stdin and stdout carry
   * supervisord's listener protocol, and its stderr is read and dropped (the listener writes
   * logFile itself: see the exit listener's heartbeat).
   */
  events?: readonly string[];
}

/** One instance's program: loaded and started by acc, never by supervisord on its own. */
export interface InstanceProgram {
  name: string;
  command: string[];
  directory: string;
  user?: string;
  /** stdout and stderr both go here. */
  logFile: string;
  stopTimeoutSec: number;
}

export interface SupervisordConfOptions {
  paths: HomePaths;
  programs: readonly ServiceProgram[];
}

const INSTANCE_PREFIX = "i-";

// A DNS label: also safe as an INI section name and as a supervisord name (no space, ':' or '/').
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Words made only of these need no quoting for shlex; '%' is left out on purpose (see quoteWord).
const BARE_WORD = /^[A-Za-z0-9_@+=:,./-]+$/;
// Python's str.isspace() is true for these besides what JavaScript's \s matches; configparser
// uses it both to strip values and to find inline comments.
// eslint-disable-next-line no-control-regex -- these control characters are what is matched
const PY_SPACE = /[\s\x1c-\x1f\x85]/;
// eslint-disable-next-line no-control-regex -- as above
const INLINE_COMMENT = /[\s\x1c-\x1f\x85][;#]/;
// supervisord replaces this text in every raw value before %-expansion, even inside "%%(here)s".
const HERE = "%(here)s";

/** supervisord's name for an instance's program (and its group: one process per group). */
export function programName(instance: string): string {
  if (!isValidInstanceName(instance)) {
    throw new Error(`invalid instance name for a supervisord program: ${JSON.stringify(instance)}`);
  }
  return INSTANCE_PREFIX + instance;
}

/** The folder supervisord needs for AUTO child logs; acc names every log, but it must exist. */
export function childLogDir(paths: HomePaths): string {
  return `${paths.supervisor}/logs`;
}

/** acc's own supervisord.conf: its socket, its services, and the instance programs now active. */
export function renderSupervisordConf(opts: SupervisordConfOptions): string {
  const { paths } = opts;
  const socket = path("unix_http_server.file", paths.supervisorSocket);
  const lines = [
    "; Written by acc: changes here are overwritten.",
    "[unix_http_server]",
    `file=${socket}`,
    "chmod=0700",
    "",
    "[supervisord]",
    `logfile=${path("supervisord.logfile", paths.supervisorLog)}`,
    "logfile_maxbytes=50MB",
    "logfile_backups=5",
    "loglevel=info",
    `pidfile=${path("supervisord.pidfile", paths.supervisorPid)}`,
    `childlogdir=${path("supervisord.childlogdir", childLogDir(paths))}`,
    // Otherwise the daemon keeps the caller's working folder.
    `directory=${path("supervisord.directory", paths.supervisor)}`,
    // What it and its programs create (logs, the store, backups) is theirs alone unless they
    // say otherwise: instances run as other users.
    "umask=077",
    "nodaemon=false",
    // Before each exec, supervisord's child closes descriptors 3 to minfds one by one in
    // Python (1,024 by default: 2-8 ms of every wake). Its own descriptors are all close-on-exec
    // (Python's default), and acc-launch closes any other before it runs an instance's code.
    "minfds=64",
  ];
  lines.push(
    "",
    "[rpcinterface:supervisor]",
    "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    "",
    "[supervisorctl]",
    `serverurl=unix://${socket}`,
    "",
  );
  const seen = new Set<string>();
  for (const program of opts.programs) {
    if (seen.has(program.name)) throw new Error(`service program ${program.name} given twice`);
    seen.add(program.name);
    lines.push(...serviceLines(program), "");
  }
  lines.push("[include]", `files = ${includePattern(paths.programsActive)}`, "");
  return lines.join("\n");
}

/** One instance's program file: loaded only while the instance is started (see index.ts). */
export function renderProgram(spec: InstanceProgram): string {
  const name = programName(spec.name);
  const lines = [
    `[program:${name}]`,
    `command=${renderCommand(spec.command)}`,
    `directory=${path("directory", spec.directory)}`,
  ];
  if (spec.user !== undefined) lines.push(`user=${user(spec.user)}`);
  lines.push(
    // acc starts and stops instances itself; supervisord must not restart what acc stopped.
    "autostart=false",
    "autorestart=false",
    // Readiness is acc's health check, so supervisord calls a process RUNNING once spawned.
    "startsecs=0",
    "startretries=0",
    // acc sends SIGTERM itself (see stopProgram) and waits stopwaitsecs; supervisord's stop
    // then ends what is left.
    "stopasgroup=true",
    "killasgroup=true",
    "stopsignal=KILL",
    `stopwaitsecs=${positiveInteger("stopwaitsecs", spec.stopTimeoutSec)}`,
    `stdout_logfile=${path("stdout_logfile", spec.logFile)}`,
    "stdout_logfile_maxbytes=10MB",
    "stdout_logfile_backups=3",
    "redirect_stderr=true",
    "",
  );
  return lines.join("\n");
}

function serviceLines(program: ServiceProgram): string[] {
  if (!SERVICE_NAME.test(program.name) || program.name.startsWith(INSTANCE_PREFIX)) {
    throw new Error(`invalid service program name: ${JSON.stringify(program.name)}`);
  }
  const events = program.events;
  const listener = events !== undefined;
  const lines = [
    `[${listener ? "eventlistener" : "program"}:${program.name}]`,
    `command=${renderCommand(program.command)}`,
  ];
  if (listener) {
    if (events.length === 0 || !events.every((event) => /^[A-Z_]+$/.test(event))) {
      throw new Error(`invalid event types: ${JSON.stringify(events)}`);
    }
    // Events wait here while the listener handles one; the default (10) drops the oldest.
    lines.push(`events=${events.join(",")}`, "buffer_size=1024");
  }
  if (program.directory !== undefined)
    lines.push(`directory=${path("directory", program.directory)}`);
  if (program.user !== undefined) lines.push(`user=${user(program.user)}`);
  if (program.env !== undefined && Object.keys(program.env).length > 0) {
    lines.push(`environment=${renderEnvironment(program.env)}`);
  }
  lines.push(
    "autostart=true",
    "autorestart=true",
    "stopasgroup=true",
    "killasgroup=true",
    `stopsignal=${program.stopSignal ?? "TERM"}`,
    `stopwaitsecs=${positiveInteger("stopwaitsecs", program.stopTimeoutSec ?? 10)}`,
  );
  if (listener) {
    // Its stdout is the protocol's, its stderr a heartbeat: neither is worth a log.
    lines.push("stdout_logfile=NONE", "stderr_logfile=NONE");
  } else {
    lines.push(
      `stdout_logfile=${path("stdout_logfile", program.logFile)}`,
      "stdout_logfile_maxbytes=10MB",
      "stdout_logfile_backups=3",
      "redirect_stderr=true",
    );
  }
  return lines;
}

/**
 * The command as supervisord reads it back: configparser (inline comments), then %-expansion,
 * then Python's shlex.split (POSIX mode, no comments).
 */
export function renderCommand(words: readonly string[]): string {
  if (words.length === 0) throw new Error("a supervisord program needs a command");
  return words.map(quoteWord).join(" ");
}

function quoteWord(word: string): string {
  checkLine("command word", word);
  if (word === "") return "''";
  if (BARE_WORD.test(word)) return word;
  let out = "'";
  for (const ch of word) {
    // Nothing is special inside single quotes, so a quote closes, is double-quoted, and reopens.
    if (ch === "'") out += `'"'"'`;
    // Left outside the quotes so that neither ever follows whitespace, which would make
    // configparser cut the rest of the line as an inline comment.
    else if (ch === ";" || ch === "#") out += `'${ch}'`;
    // %% survives supervisord's %-expansion; the empty '' keeps "%(here)s" from ever appearing.
    else if (ch === "%") out += "%%''";
    else out += ch;
  }
  return `${out}'`;
}

/**
 * KEY="value",...: supervisord splits this with a non-POSIX shlex (no escapes; a quoted token
 * keeps its quotes, which are then stripped from both ends) after %-expansion.
 */
export function renderEnvironment(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .map(([key, value]) => {
      if (!ENV_KEY.test(key))
        throw new Error(`invalid environment variable name: ${JSON.stringify(key)}`);
      const field = `environment ${key}`;
      checkLine(field, value);
      checkIniText(field, value);
      if (/^['"]|['"]$/.test(value)) {
        throw new Error(
          `${field}: a value cannot start or end with a quote in supervisord's config`,
        );
      }
      const quote = value.includes('"') ? "'" : '"';
      if (value.includes(quote)) {
        throw new Error(
          `${field}: a value cannot hold both kinds of quote in supervisord's config`,
        );
      }
      return `${key}=${quote}${value.replaceAll("%", "%%")}${quote}`;
    })
    .join(",");
}

function path(field: string, value: string): string {
  checkLine(field, value);
  // Also keeps supervisord's special log names (AUTO, NONE, syslog) from being taken as a path.
  if (!value.startsWith("/"))
    throw new Error(`${field} must be an absolute path: ${JSON.stringify(value)}`);
  checkIniText(field, value);
  if (PY_SPACE.test(value.at(-1) ?? "")) throw new Error(`${field} cannot end with a space`);
  // supervisord %-expands some paths once and stdout_logfile twice: no escaping fits all.
  if (value.includes("%")) throw new Error(`${field} cannot contain %: ${JSON.stringify(value)}`);
  return value;
}

function includePattern(dir: string): string {
  // supervisord splits [include] files on whitespace and globs each part.
  if (/[\s*?[\]]/.test(dir)) throw new Error(`cannot include from ${JSON.stringify(dir)}`);
  return `${path("include.files", dir)}/*.conf`;
}

function user(value: string): string {
  if (!USER_NAME.test(value)) throw new Error(`invalid user name: ${JSON.stringify(value)}`);
  return value;
}

function positiveInteger(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${field} must be a positive integer, not ${value}`);
  }
  return value;
}

/** Characters no INI line can carry; reaching here with one is a bug upstream. */
function checkLine(field: string, value: string): void {
  // Python reads the file with universal newlines, so a lone \r also ends a line.
  if (/[\n\r\0]/.test(value)) {
    throw new Error(`${field} contains a newline or NUL: ${JSON.stringify(value)}`);
  }
}

/** What configparser and supervisord would change in a value that is not quoted for shlex. */
function checkIniText(field: string, value: string): void {
  if (INLINE_COMMENT.test(value)) {
    throw new Error(
      `${field}: a space before ';' or '#' would start a comment: ${JSON.stringify(value)}`,
    );
  }
  if (value.includes(HERE)) throw new Error(`${field} cannot contain ${HERE}`);
}
