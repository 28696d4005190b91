import { AccError } from "../lib/errors.js";

export const MAX_NAME_LENGTH = 40;
const NAME_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/** Shows a bad value in an error line: quoted, escaped, and cut so that a 10 kB input stays one short line. */
export function showValue(value: string, max = 60): string {
  const shown = JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
  return value.length > max ? `${shown} (${value.length} characters)` : shown;
}

export function isValidInstanceName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
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
