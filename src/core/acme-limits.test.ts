import assert from "node:assert/strict";
import { test } from "node:test";
import { orderRefusal, registeredDomain, type OrderRecord } from "./acme-limits.js";
import { LETSENCRYPT_PRODUCTION } from "./config.js";

const HOUR = 3600_000;
const NOW = Date.parse("2026-12-03T12:00:00Z");

function orders(count: number, make: (i: number) => Partial<OrderRecord>): OrderRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    at: NOW - HOUR,
    hosts: [`i${i}.example.org`],
    renewal: false,
    ...make(i),
  }));
}

test("registeredDomain: the last two labels, three under a country's second level", () => {
  assert.equal(registeredDomain("crm.example.org"), "example.org");
  assert.equal(registeredDomain("a.b.Example.ORG"), "example.org");
  assert.equal(registeredDomain("shop.example.co.uk"), "example.co.uk");
  assert.equal(registeredDomain("example.de"), "example.de");
});

test("orderRefusal: Let's Encrypt's limits, counted from acc's own orders", () => {
  const le = LETSENCRYPT_PRODUCTION;
  const host = ["new.example.org"];
  assert.equal(orderRefusal(le, [], host, false, NOW), undefined);
  // 50 new certificates under example.org this week: a 51st is refused, a renewal is not.
  const fifty = orders(50, (i) => ({ at: NOW - 24 * HOUR * (i % 6) - HOUR * 4 }));
  assert.match(
    orderRefusal(le, fifty, host, false, NOW) ?? "",
    /^rate-limit guard: 50 new certificates under example.org this week .*--wildcard/,
  );
  assert.equal(orderRefusal(le, fifty, host, true, NOW), undefined);
  assert.equal(orderRefusal(le, fifty, ["new.other.net"], false, NOW), undefined);
  // Older than a week: no longer counted.
  const old = orders(50, () => ({ at: NOW - 8 * 24 * HOUR }));
  assert.equal(orderRefusal(le, old, host, false, NOW), undefined);
  // 300 orders in 3 hours (renewals of other names): the next one waits.
  const burst = orders(300, (i) => ({ at: NOW - HOUR, renewal: true, hosts: [`r${i}.x${i}.net`] }));
  assert.match(orderRefusal(le, burst, host, true, NOW) ?? "", /300 orders in the last 3 hours/);
  // The same names five times this week.
  const same = orders(5, () => ({ hosts: ["b.example.org", "a.example.org"], renewal: true }));
  assert.match(
    orderRefusal(le, same, ["a.example.org", "b.example.org"], true, NOW) ?? "",
    /5 certificates for a.example.org, b.example.org this week/,
  );
  // Another CA (a test CA, LE's staging): no guard.
  assert.equal(orderRefusal("https://127.0.0.1:14000/dir", fifty, host, false, NOW), undefined);
});
