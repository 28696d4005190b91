import { AccError } from "../lib/errors.js";

export const MAX_NAME_LENGTH = 40;
const NAME_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const MODEL_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/** Shows a bad value in an error line: quoted, escaped, and cut so that a 10 kB input stays one short line. */
export function showValue(value: string, max = 60): string {
  const shown = JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
  return value.length > max ? `${shown} (${value.length} characters)` : shown;
}

export function isValidInstanceName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

/** Model names are DNS labels too (here, not in core/model.ts: the CLI client checks them). */
export function isValidModelName(name: string): boolean {
  return MODEL_NAME_RE.test(name);
}

/** A model name given to look instances up by (acc list --model): never read from disk. */
export function validateModelName(name: string): string {
  if (!isValidModelName(name)) {
    throw new AccError("ACC_INVALID", `invalid model name ${showValue(name)}`, {
      hint: "acc models lists them",
    });
  }
  return name;
}

/** Instance names are DNS labels: they become a host label, a user name, a file name and a config key. */
export function validateInstanceName(name: string): string {
  if (!isValidInstanceName(name)) {
    throw new AccError("ACC_INVALID", `invalid instance name ${showValue(name)}`, {
      hint: `use 1 to ${MAX_NAME_LENGTH} characters a-z, 0-9 and '-', not starting or ending with '-'`,
    });
  }
  return name;
}

/** The first label of acc.toml's admin_host: `acc` for acc.example.com. */
export function reservedInstanceName(adminHost: string): string {
  return adminHost.toLowerCase().split(".")[0] ?? "";
}

/**
 * The name of an instance about to be made: a valid name that is not the admin host's first
 * label, which would read as acc's own (acc.example.com beside crm.example.com).
 */
export function validateNewInstanceName(name: string, adminHost: string): string {
  validateInstanceName(name);
  if (name === reservedInstanceName(adminHost)) {
    throw new AccError(
      "ACC_INVALID",
      `invalid instance name ${showValue(name)}: reserved for acc's admin host ${adminHost}`,
      { hint: `pick another name; admin_host in acc.toml sets acc's own host` },
    );
  }
  return name;
}

export function isValidHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const labels = host.split(".");
  return labels.every((label) => label.length > 0 && label.length <= 63 && LABEL_RE.test(label));
}

/** Host names route requests in nginx: lower-case DNS names only, so nothing can reach its config. */
export function validateHostname(host: string): string {
  const lower = host.toLowerCase();
  if (!isValidHostname(lower)) {
    throw new AccError("ACC_INVALID", `invalid host name ${showValue(host)}`, {
      hint: "use a DNS name such as crm.example.com (letters, digits, '-' and '.')",
    });
  }
  return lower;
}

/**
 * Words nginx reads as its own inside a `map` block, whatever follows them: `default` and
 * `include` are directives there, `hostnames` and `volatile` are when alone on a line.
 */
const NGINX_MAP_WORDS = new Set(["default", "include", "hostnames", "volatile"]);

export function isNginxMapWord(host: string): boolean {
  return NGINX_MAP_WORDS.has(host);
}

/**
 * A URL parser reads a host whose last label is a number (digits, or 0x and hex digits) as an
 * IPv4 address (WHATWG URL, "ends in a number"): 127.0.0.1, 10.1, 0x7f000001.
 */
function isAddressLike(host: string): boolean {
  return /^(?:\d+|0x[0-9a-f]*)$/.test(host.split(".").at(-1) ?? "");
}

/**
 * An extra host name of instance `name`: a DNS name that nginx's host map reads as a plain
 * key, that no request for another site or another instance carries. `NAME.<domain>` and the
 * names under it are the instance's own; every other name under `<domain>` is, or would be,
 * another instance's, and `localhost` or a bare address would take every request sent to it.
 */
export function validateInstanceHost(
  host: string,
  owner: {
    name: string;
    domain: string;
    /** acc.toml's admin_host: acc's own. */ adminHost?: string;
  },
): string {
  const lower = validateHostname(host);
  const refuse = (why: string, hint: string): never => {
    throw new AccError("ACC_INVALID", `invalid host name ${showValue(host)}: ${why}`, { hint });
  };
  const dnsName = "use a DNS name of the site, such as crm.example.com";
  if (owner.adminHost !== undefined && lower === owner.adminHost.toLowerCase()) {
    refuse("it is acc's admin host (admin_host in acc.toml)", dnsName);
  }
  if (isNginxMapWord(lower)) {
    refuse(
      "nginx reads it as a directive of its host map",
      `${dnsName} (default, include, hostnames and volatile are nginx's)`,
    );
  }
  if (lower === "localhost") {
    refuse("it would take every request for localhost", dnsName);
  }
  if (isAddressLike(lower)) {
    refuse("an IP address would take every request sent to it", dnsName);
  }
  const domain = owner.domain.toLowerCase();
  const own = `${owner.name}.${domain}`;
  const mine = `${owner.name} answers at ${own} already; use a name under it or outside ${domain}`;
  if (lower === domain) refuse(`instances answer at NAME.${domain}, not at ${domain}`, mine);
  if (lower.endsWith(`.${domain}`) && lower !== own && !lower.endsWith(`.${own}`)) {
    const other = lower.slice(0, -domain.length - 1).replace(/^.*\./, "");
    refuse(`${other}.${domain} is, or would be, instance ${other}'s own host`, mine);
  }
  return lower;
}

export function validatePort(value: string | number, what = "port"): number {
  const port = typeof value === "number" ? value : /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new AccError("ACC_INVALID", `invalid ${what} ${showValue(String(value))}`, {
      hint: "use a whole number from 1 to 65535",
    });
  }
  return port;
}

/**
 * The home folder's path is written into nginx and supervisord config files; only
 * characters that need no quoting in either are allowed ('%' is special to supervisord).
 */
export function validateHomePath(home: string): string {
  if (
    !home.startsWith("/") ||
    !/^[A-Za-z0-9._/+-]+$/.test(home) ||
    home.split("/").includes("..")
  ) {
    throw new AccError("ACC_INVALID", `invalid home folder ${showValue(home)}`, {
      hint: "use an absolute path of letters, digits and . _ - + /",
    });
  }
  return home;
}
