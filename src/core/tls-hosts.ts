// Which host names a certificate covers (RFC 6125 section 6.4.3, as browsers apply it): an
// exact name, or `*.rest` for one label in front of `rest`, never more than one.
import { isValidHostname } from "./validate.js";

/** Whether one of the certificate's DNS names covers `host` (both lower case). */
export function hostCovered(names: readonly string[], host: string): boolean {
  const wanted = host.toLowerCase();
  return names.some((raw) => {
    const name = raw.toLowerCase();
    if (!name.startsWith("*.")) return name === wanted;
    const dot = wanted.indexOf(".");
    return dot > 0 && wanted.slice(dot + 1) === name.slice(2);
  });
}

/**
 * The DNS names of a subjectAltName as node:crypto prints it ("DNS:a.example, DNS:*.b.example,
 * IP Address:..."; a name with unusual characters comes JSON-quoted). Anything that is not a
 * plain DNS name or a leading wildcard is dropped: it covers no host acc serves.
 */
export function dnsNamesOf(subjectAltName: string | undefined): string[] {
  const names: string[] = [];
  for (const entry of (subjectAltName ?? "").split(/, (?=[A-Za-z ]+:)/)) {
    if (!entry.startsWith("DNS:")) continue;
    let value = entry.slice(4);
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    const name = value.toLowerCase();
    const bare = name.startsWith("*.") ? name.slice(2) : name;
    if (bare.includes(".") && isValidHostname(bare)) names.push(name);
  }
  return names;
}

/** The wildcard name that covers every instance NAME.<domain>. */
export function wildcardName(domain: string): string {
  return `*.${domain.toLowerCase()}`;
}

/**
 * X-Acc-Instance of a request for an ACME challenge, as nginx sets it: never an instance's name
 * (none holds ':'), and nginx replaces a client's own, so no request can pass for the other.
 */
export const ACME_CHALLENGE_INSTANCE = ":acme";
