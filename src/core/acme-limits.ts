// The rate-limit guard: before an order to Let's Encrypt, acc counts its own recent orders
// against the CA's published limits (https://letsencrypt.org/docs/rate-limits/), so that a
// loop of failures or a home switched to ACME at once never locks the domain out for a week.
// Orders made by other tools with the same domain are not seen: the guard is acc's share.

import { LETSENCRYPT_PRODUCTION } from "./config.js";

/** One order acc made: when, for which names, and whether it renewed the same names. */
export interface OrderRecord {
  at: number;
  hosts: string[];
  renewal: boolean;
}

const HOUR = 3600_000;
const WEEK = 7 * 24 * HOUR;

/** Let's Encrypt's production limits; other CAs (and LE's staging, 10-100x higher) get none. */
export const LETSENCRYPT_LIMITS = {
  /** New orders per account per 3 hours. */
  ordersPer3h: 300,
  /** New certificates per registered domain per week (renewals of the same names exempt). */
  certificatesPerDomainWeek: 50,
  /** Certificates for the exact same set of names per week. */
  duplicatesPerWeek: 5,
};

/** Second-level labels under which a country's registered domains sit (co.uk, com.au...). */
const SECOND_LEVEL = new Set(["co", "com", "net", "org", "gov", "ac", "edu", "ltd", "plc"]);

/**
 * The registered domain of a host, as the limit counts it: the last two labels, three under a
 * country's second level (shop.example.co.uk → example.co.uk). An approximation of the Public
 * Suffix List, which acc does not ship: it errs towards counting more hosts together.
 */
export function registeredDomain(host: string): string {
  const labels = host.toLowerCase().split(".");
  const last = labels.at(-1) ?? "";
  const second = labels.at(-2) ?? "";
  const take = last.length === 2 && SECOND_LEVEL.has(second) ? 3 : 2;
  return labels.slice(-take).join(".");
}

/** The orders that still count (the longest window is a week). */
export function recentOrders(orders: readonly OrderRecord[], now: number): OrderRecord[] {
  return orders.filter((order) => now - order.at < WEEK && order.at <= now);
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return a.length === b.length && b.every((host) => set.has(host));
}

/**
 * Why a new order for `hosts` would go over a limit of `directory`'s CA, or undefined when it
 * may go. `renewal`: the same names as the certificate it replaces.
 */
export function orderRefusal(
  directory: string,
  orders: readonly OrderRecord[],
  hosts: readonly string[],
  renewal: boolean,
  now: number,
): string | undefined {
  if (directory !== LETSENCRYPT_PRODUCTION) return undefined;
  const limits = LETSENCRYPT_LIMITS;
  const recent = recentOrders(orders, now);
  const last3h = recent.filter((order) => now - order.at < 3 * HOUR).length;
  if (last3h >= limits.ordersPer3h) {
    return `rate-limit guard: ${last3h} orders in the last 3 hours (Let's Encrypt allows ${limits.ordersPer3h} per account)`;
  }
  const duplicates = recent.filter((order) => sameNames(order.hosts, hosts)).length;
  if (duplicates >= limits.duplicatesPerWeek) {
    return `rate-limit guard: ${duplicates} certificates for ${hosts.join(", ")} this week (Let's Encrypt allows ${limits.duplicatesPerWeek})`;
  }
  if (renewal) return undefined;
  for (const domain of new Set(hosts.map(registeredDomain))) {
    const count = recent.filter(
      (order) => !order.renewal && order.hosts.some((host) => registeredDomain(host) === domain),
    ).length;
    if (count >= limits.certificatesPerDomainWeek) {
      return `rate-limit guard: ${count} new certificates under ${domain} this week (Let's Encrypt allows ${limits.certificatesPerDomainWeek}); a wildcard *.${domain} from DNS-01 (acc tls import --wildcard) needs none`;
    }
  }
  return undefined;
}
