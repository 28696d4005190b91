import { AccError } from "../lib/errors.js";
import { parseDuration } from "./duration.js";
import { parseLimit, type LimitKey, type Limits } from "./limits.js";
import { hasControlCharacter } from "./model-params.js";
import { isValidHostname, showValue } from "./validate.js";

/** acc.toml, after defaults and ACC_<KEY> environment overrides. */
export interface AccConfig {
  /** Instance `foo` answers at foo.<domain>. */
  domain: string;
  /** acc's API and admin UI answer at this host, through acc's nginx; reserved to acc. */
  admin_host: string;
  /** Public HTTP port of acc's nginx. */
  http_port: number;
  /** Public HTTPS port of acc's nginx (when tls is not off). */
  https_port: number;
  /** "off": HTTP only; "manual": certificates imported with `acc tls import`; "acme": issued and renewed by acc. */
  tls: "off" | "manual" | "acme";
  /** The ACME server's directory URL (tls = "acme"). */
  acme_directory: string;
  /** The ACME account's contact address ("" for none). */
  acme_email: string;
  /** A PEM file of extra CAs to trust when talking to the ACME server ("" for none). */
  acme_ca_bundle: string;
  /** The DNS server the reachability check asks ("" for the system's resolver). */
  acme_resolver: string;
  /** How often acc server looks at the certificates (renewal, retries). */
  tls_check_interval: number;
  /** HTTP answers 301 to HTTPS for hosts served over HTTPS (never the ACME challenge path). */
  http_redirect: boolean;
  /** Address acc's nginx listens on. */
  listen_address: string;
  /** Instances get ports from this range (inclusive), bound to 127.0.0.1. */
  instance_port_min: number;
  instance_port_max: number;
  /** Default idle timeout in ms, null for never (models and instances override it). */
  idle_timeout: number | null;
  /** Port of `acc server` on 127.0.0.1. */
  server_port: number;
  /** Default start timeout in ms (models override it). */
  start_timeout: number;
  /** Default stop timeout in ms before SIGKILL (models override it). */
  stop_timeout: number;
  /** How long nginx and the waker wait for an instance's answer, in ms (models override it). */
  request_timeout: number;
  /** As root: the system user nginx's workers run as (never mapped to a Postgres role). */
  nginx_user: string;
  /** As root: the system user that runs and owns the managed Postgres cluster. */
  postgres_user: string;
  /** At most this many instance starts at once; further wakes queue. */
  max_concurrent_starts: number;
  /** At most this many instances running (0: no cap); a wake over it stops the least recently used idle one. */
  max_running: number;
  /** Memory budget in MB for running instances (0: none); a wake over it stops least recently used ones. */
  max_running_memory_mb: number;
  /** User-Agent substrings (case-insensitive) that never wake an instance. */
  wake_filter: string[];
  /** How often the monitor in `acc server` looks for idle instances. */
  monitor_interval: number;
  /** acc's nginx logs (access.log, error.log) are rotated past this size in MB (0: never). */
  nginx_log_max_mb: number;
  /** A browser navigation still waiting after this long gets the waiting page. */
  waiting_page_after: number;
  /** "managed": acc's own cluster in HOME/postgres; "external": the server at postgres_admin_url. */
  postgres: "managed" | "external";
  /** Port of the managed cluster, on 127.0.0.1 (its socket is in HOME/postgres/run too). */
  postgres_port: number;
  /** External mode: a URL for a role with CREATEDB and CREATEROLE. */
  postgres_admin_url: string;
  /** Empty: the store is HOME/state.db (SQLite); a postgres:// URL moves it to Postgres. */
  state_url: string;
  /** "auto": instances run in bubblewrap when it works here; "off": never. */
  sandbox: "auto" | "off";
  /** After this many failures in a row (crashes or failed starts), no automatic start. */
  crash_retries: number;
  /** Longest pause between automatic starts of a failing instance, in ms. */
  crash_backoff_max: number;
  /** A run this long (ms) ends a series of failures. */
  crash_reset_after: number;
  /** "auto": each instance in its own cgroup when acc may make them here; "off": never. */
  cgroups: "auto" | "off";
  /** Default limits of an instance (models and instances override them); undefined: none. */
  memory_limit: number | undefined;
  cpu_limit: number | undefined;
  pids_limit: number | undefined;
  /** acc server's /metrics adds acc_instance_memory_bytes{instance}: one series per running instance. */
  metrics_instance_memory: boolean;
}

interface KeySpec {
  doc: string;
  kind:
    | "string"
    | "port"
    | "int"
    | "duration"
    | "duration-or-never"
    | "host"
    | "address"
    | "user"
    | "list"
    | "postgres-mode"
    | "postgres-url"
    | "sandbox"
    | "tls"
    | "url"
    | "email"
    | "file"
    | "resolver"
    | "limit"
    | "bool";
  /** Default for root, then for a normal user; "<domain>" in it stands for the resolved domain. */
  defaults: [string | number | boolean | string[], string | number | boolean | string[]];
}

export const LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";

/** Uptime checkers and crawlers: they must not keep every instance awake. */
export const DEFAULT_WAKE_FILTER = [
  "bot",
  "crawler",
  "spider",
  "slurp",
  "uptime",
  "pingdom",
  "statuscake",
  "site24x7",
  "check_http",
  "nagios",
  "zabbix",
  "blackbox",
];

export const CONFIG_KEYS: Readonly<Record<keyof AccConfig, KeySpec>> = {
  domain: {
    doc: "Instance NAME answers at http://NAME.<domain>; 'localhost' needs no DNS.",
    kind: "host",
    defaults: ["localhost", "localhost"],
  },
  admin_host: {
    doc: "acc's API and admin UI answer at this host, through acc's nginx; no instance may take it or be named its first label.",
    kind: "host",
    defaults: ["acc.<domain>", "acc.<domain>"],
  },
  http_port: { doc: "Public HTTP port of acc's nginx.", kind: "port", defaults: [80, 8080] },
  https_port: {
    doc: "Public HTTPS port of acc's nginx, when tls is not off.",
    kind: "port",
    defaults: [443, 8443],
  },
  tls: {
    doc: "'off': HTTP only; 'manual': HTTPS for instances with a certificate imported by 'acc tls import'; 'acme': acc gets and renews each instance's certificate from acme_directory.",
    kind: "tls",
    defaults: ["off", "off"],
  },
  acme_directory: {
    doc: "The ACME server's directory URL: Let's Encrypt's production by default; its staging is https://acme-staging-v02.api.letsencrypt.org/directory.",
    kind: "url",
    defaults: [LETSENCRYPT_PRODUCTION, LETSENCRYPT_PRODUCTION],
  },
  acme_email: {
    doc: "Contact address of the home's ACME account (expiry notices from the CA); empty for none.",
    kind: "email",
    defaults: ["", ""],
  },
  acme_ca_bundle: {
    doc: "Absolute path of a PEM file of extra CAs to trust when talking to the ACME server (a test CA); empty for none.",
    kind: "file",
    defaults: ["", ""],
  },
  acme_resolver: {
    doc: "The DNS server ('IP' or 'IP:PORT') that the check before each order asks, as the CA would; empty for the system's resolver.",
    kind: "resolver",
    defaults: ["", ""],
  },
  tls_check_interval: {
    doc: "How often acc server looks at the certificates: renews those past two thirds of their lifetime, retries failed ones.",
    kind: "duration",
    defaults: ["1h", "1h"],
  },
  http_redirect: {
    doc: "HTTP answers 301 to HTTPS for the hosts served over HTTPS (the path /.well-known/acme-challenge/ stays on HTTP).",
    kind: "bool",
    defaults: [false, false],
  },
  listen_address: {
    doc: "Address acc's nginx listens on ('0.0.0.0' for all IPv4 addresses).",
    kind: "address",
    defaults: ["0.0.0.0", "0.0.0.0"],
  },
  instance_port_min: {
    doc: "Lowest port given to an instance (instances listen on 127.0.0.1 only).",
    kind: "port",
    defaults: [20000, 20000],
  },
  instance_port_max: {
    doc: "Highest port given to an instance.",
    kind: "port",
    defaults: [29999, 29999],
  },
  idle_timeout: {
    doc: "Stop an instance after this long without requests ('never' to keep it up).",
    kind: "duration-or-never",
    defaults: ["15m", "15m"],
  },
  server_port: {
    doc: "Port of 'acc server' (the waker), on 127.0.0.1 only.",
    kind: "port",
    defaults: [9713, 9713],
  },
  start_timeout: {
    doc: "How long a start may take to pass its health check (models may override).",
    kind: "duration",
    defaults: ["60s", "60s"],
  },
  stop_timeout: {
    doc: "How long a stop waits after SIGTERM before SIGKILL (models may override).",
    kind: "duration",
    defaults: ["10s", "10s"],
  },
  request_timeout: {
    doc: "How long nginx waits for an instance's answer; then the client gets a 504 and the request is never sent again (models may override).",
    kind: "duration",
    defaults: ["300s", "300s"],
  },
  // '_' in the defaults: an instance's user is acc-<DNS label>, which never holds one.
  nginx_user: {
    doc: "As root: the system user nginx's workers run as.",
    kind: "user",
    defaults: ["acc_nginx", "acc_nginx"],
  },
  postgres_user: {
    doc: "As root: the system user that runs and owns the managed Postgres cluster.",
    kind: "user",
    defaults: ["acc_postgres", "acc_postgres"],
  },
  max_concurrent_starts: {
    doc: "At most this many instance starts at once; further wakes wait their turn.",
    kind: "int",
    defaults: [4, 4],
  },
  max_running: {
    doc: "At most this many instances running (0: no cap); a wake over it first stops the least recently used idle one.",
    kind: "int",
    defaults: [0, 0],
  },
  max_running_memory_mb: {
    doc: "Memory budget in MB for running instances (0: none); a wake over it first stops least recently used idle ones.",
    kind: "int",
    defaults: [0, 0],
  },
  wake_filter: {
    doc: "User-Agent substrings (case-insensitive) that get a 503 instead of waking an instance (env: comma-separated).",
    kind: "list",
    defaults: [DEFAULT_WAKE_FILTER, DEFAULT_WAKE_FILTER],
  },
  crash_retries: {
    doc: "An instance that fails (crashes or fails its start) this many times in a row is not started again until 'acc start'; automatic starts meanwhile wait 1 s, 2 s, 4 s ... between tries.",
    kind: "int",
    defaults: [10, 10],
  },
  crash_backoff_max: {
    doc: "Longest wait between automatic starts of an instance that keeps failing.",
    kind: "duration",
    defaults: ["5m", "5m"],
  },
  crash_reset_after: {
    doc: "A run at least this long ends a series of failures: the next one counts as the first.",
    kind: "duration",
    defaults: ["5m", "5m"],
  },
  monitor_interval: {
    doc: "How often acc server looks for idle instances to stop.",
    kind: "duration",
    defaults: ["30s", "30s"],
  },
  nginx_log_max_mb: {
    doc: "acc server rotates nginx's access.log and error.log past this size in MB, keeping 3 old ones (0: never).",
    kind: "int",
    defaults: [50, 50],
  },
  waiting_page_after: {
    doc: "A browser still waiting for a start after this long gets a waiting page that reloads when ready.",
    kind: "duration",
    defaults: ["1s", "1s"],
  },
  postgres: {
    doc: "Instances' databases: 'managed' (acc's own cluster in HOME/postgres) or 'external' (postgres_admin_url).",
    kind: "postgres-mode",
    defaults: ["managed", "managed"],
  },
  postgres_port: {
    doc: "Port of the managed Postgres cluster, on 127.0.0.1 (its unix socket is in HOME/postgres/run).",
    kind: "port",
    defaults: [15432, 15432],
  },
  postgres_admin_url: {
    doc: "External mode: postgres://USER:PASSWORD@HOST:PORT/DB of a role with CREATEDB and CREATEROLE.",
    kind: "postgres-url",
    defaults: ["", ""],
  },
  state_url: {
    doc: "acc's own store: empty for HOME/state.db (SQLite), or a postgres:// URL.",
    kind: "postgres-url",
    defaults: ["", ""],
  },
  sandbox: {
    doc: "'auto': each instance runs in its own bubblewrap sandbox when bwrap works here; 'off': never (acc status says which).",
    kind: "sandbox",
    defaults: ["auto", "auto"],
  },
  cgroups: {
    doc: "'auto': each instance runs in its own cgroup (stop kills all of it; limits apply) when acc may make cgroups here; 'off': never (acc status says which).",
    kind: "sandbox",
    defaults: ["auto", "auto"],
  },
  memory_limit: {
    doc: 'Default memory limit of an instance\'s cgroup, such as "512M" (0: none); models and acc set override it.',
    kind: "limit",
    defaults: ["0", "0"],
  },
  cpu_limit: {
    doc: 'Default CPU limit of an instance, a share of one CPU such as "0.5" (0: none).',
    kind: "limit",
    defaults: ["0", "0"],
  },
  pids_limit: {
    doc: "Default limit of an instance's processes and threads (0: none).",
    kind: "limit",
    defaults: ["0", "0"],
  },
  metrics_instance_memory: {
    doc: "acc server's /metrics adds each running instance's memory (acc_instance_memory_bytes{instance}): one series per instance, so off by default.",
    kind: "bool",
    defaults: [false, false],
  },
};

/** A key's default; admin_host's follows the domain, so it is derived, not fixed. */
function defaultOf(
  spec: KeySpec,
  isRoot: boolean,
  domain: string,
): string | number | boolean | string[] {
  const value = spec.defaults[isRoot ? 0 : 1];
  return typeof value === "string" ? value.replace("<domain>", domain) : value;
}

export function envKey(key: string): string {
  return `ACC_${key.toUpperCase()}`;
}

function convert(key: string, spec: KeySpec, raw: unknown, source: string): unknown {
  const bad = (hint: string): AccError =>
    new AccError("ACC_INVALID", `invalid ${key} ${showValue(String(raw))} in ${source}`, { hint });
  if (spec.kind === "list") {
    const items = Array.isArray(raw) ? raw : typeof raw === "string" ? raw.split(",") : null;
    if (items === null || !items.every((item) => typeof item === "string"))
      throw bad("expected a list of strings");
    const list = items
      .map((item: string) => item.trim().toLowerCase())
      .filter((item) => item !== "");
    if (list.some(hasControlCharacter)) throw bad("control characters are not allowed");
    return list;
  }
  if (spec.kind === "bool") {
    // TOML gives a boolean; the environment gives text.
    if (typeof raw === "boolean") return raw;
    const word = typeof raw === "string" ? raw.trim().toLowerCase() : "";
    if (word === "true" || word === "1" || word === "yes") return true;
    if (word === "false" || word === "0" || word === "no") return false;
    throw bad("expected true or false");
  }
  const text = typeof raw === "number" ? String(raw) : typeof raw === "string" ? raw.trim() : null;
  if (text === null) throw bad(`expected a ${spec.kind}`);
  switch (spec.kind) {
    case "port":
    case "int": {
      if (!/^\d+$/.test(text)) throw bad("expected a whole number");
      const n = Number(text);
      if (spec.kind === "port" && (n < 1 || n > 65535))
        throw bad("expected a port from 1 to 65535");
      return n;
    }
    case "duration":
    case "duration-or-never": {
      const ms = parseDuration(text, key);
      if (ms === null && spec.kind === "duration") throw bad("'never' is not allowed here");
      return ms;
    }
    case "host":
      if (!isValidHostname(text.toLowerCase())) throw bad("expected a DNS name");
      return text.toLowerCase();
    case "address":
      if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(text) && !/^\[[0-9a-f:]+\]$/i.test(text)) {
        throw bad("expected an IPv4 address or [IPv6]");
      }
      return text;
    case "user":
      if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(text)) throw bad("expected a system user name");
      return text;
    case "string":
      if (hasControlCharacter(text)) throw bad("control characters are not allowed");
      return text;
    case "postgres-mode":
      if (text !== "managed" && text !== "external") throw bad("expected managed or external");
      return text;
    case "postgres-url":
      if (text !== "" && !/^postgres(ql)?:\/\/\S+$/.test(text))
        throw bad("expected a postgres:// URL");
      return text;
    case "sandbox":
      if (text !== "auto" && text !== "off") throw bad("expected auto or off");
      return text;
    case "tls":
      if (text !== "off" && text !== "manual" && text !== "acme")
        throw bad("expected off, manual or acme");
      return text;
    case "url":
      if (!/^https:\/\/[^\s/?#]+\S*$/.test(text)) throw bad("expected an https:// URL");
      return text;
    case "email":
      if (text !== "" && !/^[^\s@<>"',;:]+@[a-z0-9.-]+\.[a-z]{2,}$/i.test(text))
        throw bad("expected an email address");
      return text;
    case "file":
      if (text !== "" && (!text.startsWith("/") || hasControlCharacter(text)))
        throw bad("expected an absolute path");
      return text;
    case "resolver": {
      if (text === "") return text;
      const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(text);
      if (!m || m[1]!.split(".").some((o) => Number(o) > 255) || Number(m[2] ?? 53) > 65535)
        throw bad("expected IP or IP:PORT");
      return text;
    }
    case "limit":
      return parseLimit(key.replace(/_limit$/, "") as LimitKey, text, source);
  }
}

/** acc.toml's default limits, as a model's [limits] table. */
export function configLimits(config: AccConfig): Limits {
  const out: Limits = {};
  if (config.memory_limit !== undefined) out.memory = config.memory_limit;
  if (config.cpu_limit !== undefined) out.cpu = config.cpu_limit;
  if (config.pids_limit !== undefined) out.pids = config.pids_limit;
  return out;
}

/** Keys of older versions that must not be silently ignored. */
const REPLACED_KEYS = ["service_user"] as const;

/**
 * nginx's workers face the network, so their user must not be the cluster's owner (who is
 * mapped to the Postgres superuser), nor root, nor an instance's user (acc-<name>).
 */
function checkServiceUsers(config: AccConfig): void {
  for (const key of ["nginx_user", "postgres_user"] as const) {
    const user = config[key];
    if (user === "root" || user.startsWith("acc-")) {
      throw new AccError("ACC_INVALID", `invalid ${key} ${showValue(user)}`, {
        hint:
          user === "root"
            ? "acc's services never run as root"
            : "acc-<name> is the user of instance <name>",
      });
    }
  }
  if (config.nginx_user === config.postgres_user) {
    throw new AccError(
      "ACC_INVALID",
      `nginx_user and postgres_user are both ${showValue(config.nginx_user)}`,
      {
        hint: "give them two users: the cluster's owner is its superuser, nginx's workers must not be",
      },
    );
  }
}

/**
 * Resolves the config from the parsed acc.toml and the environment: env ACC_<KEY> wins over
 * the file, which wins over the defaults.
 */
export function resolveConfig(
  file: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>,
  isRoot: boolean,
): AccConfig {
  const oldKey = REPLACED_KEYS.find(
    (key) => file[key] !== undefined || (env[envKey(key)] ?? "") !== "",
  );
  if (oldKey !== undefined) {
    const where = file[oldKey] !== undefined ? "acc.toml" : `env ${envKey(oldKey)}`;
    throw new AccError(
      "ACC_INVALID",
      `${oldKey} in ${where} is replaced by nginx_user and postgres_user`,
      {
        hint: `remove it: nginx_user (default acc_nginx) runs nginx's workers, postgres_user (default acc_postgres) the managed Postgres; acc boot moves an existing home to them`,
      },
    );
  }
  for (const key of Object.keys(file)) {
    if (!(key in CONFIG_KEYS)) {
      throw new AccError("ACC_INVALID", `unknown key ${showValue(key)} in acc.toml`, {
        hint: `known keys: ${Object.keys(CONFIG_KEYS).join(", ")}`,
      });
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
    const fromEnv = env[envKey(key)];
    if (fromEnv !== undefined && fromEnv !== "") {
      out[key] = convert(key, spec, fromEnv, `env ${envKey(key)}`);
    } else if (file[key] !== undefined) {
      out[key] = convert(key, spec, file[key], "acc.toml");
    } else {
      // domain comes first in CONFIG_KEYS, so it is resolved before the keys derived from it.
      out[key] = convert(key, spec, defaultOf(spec, isRoot, String(out.domain)), "defaults");
    }
  }
  const config = out as unknown as AccConfig;
  if (config.instance_port_max - config.instance_port_min + 1 > 32768) {
    // nginx picks an instance's port with `hash`, whose range stops at 32768 servers.
    throw new AccError(
      "ACC_INVALID",
      `invalid port range ${config.instance_port_min}-${config.instance_port_max}: more than 32768 ports`,
      { hint: "use at most 32768 instance ports" },
    );
  }
  if (config.postgres === "external" && config.postgres_admin_url === "") {
    throw new AccError("ACC_INVALID", 'postgres = "external" needs postgres_admin_url', {
      hint: 'set postgres_admin_url in acc.toml, or postgres = "managed"',
    });
  }
  checkServiceUsers(config);
  if (config.tls !== "off" && config.https_port === config.http_port) {
    throw new AccError("ACC_INVALID", `https_port and http_port are both ${config.http_port}`, {
      hint: "give HTTPS a port of its own",
    });
  }
  if (config.crash_retries < 1) {
    throw new AccError("ACC_INVALID", `invalid crash_retries ${config.crash_retries}`, {
      hint: "use 1 or more: the number of failures in a row after which an instance stays failed",
    });
  }
  if (config.instance_port_min > config.instance_port_max) {
    throw new AccError(
      "ACC_INVALID",
      `invalid port range ${config.instance_port_min}-${config.instance_port_max}`,
      { hint: "instance_port_min must not be above instance_port_max" },
    );
  }
  return config;
}

/** The acc.toml that `acc init` writes: every key, commented, with its default. */
export function renderConfigFile(
  overrides: Partial<Record<keyof AccConfig, string | number>>,
  isRoot: boolean,
): string {
  const lines = [
    "# acc configuration. Every key can be overridden by the environment variable ACC_<KEY>",
    "# (for example ACC_HTTP_PORT=8081). Uncomment a line to change a value.",
    "",
  ];
  for (const [key, spec] of Object.entries(CONFIG_KEYS) as [keyof AccConfig, KeySpec][]) {
    const domain = String(overrides.domain ?? CONFIG_KEYS.domain.defaults[isRoot ? 0 : 1]);
    const value = overrides[key] ?? defaultOf(spec, isRoot, domain);
    const literal = typeof value === "number" ? String(value) : JSON.stringify(value);
    lines.push(`# ${spec.doc}`);
    lines.push(overrides[key] !== undefined ? `${key} = ${literal}` : `# ${key} = ${literal}`);
    lines.push("");
  }
  return lines.join("\n");
}
