import assert from "node:assert/strict";
import { test } from "node:test";
import { certificateWarning, renewalReason, type CertificateState } from "./acme.js";

const DAY = 24 * 3600_000;
const start = new Date("2026-12-01T00:00:00Z");
const own = {
  names: ["a.example.org", "shop.example.com"],
  notBefore: start,
  notAfter: new Date(start.getTime() + 90 * DAY),
};
const acme: CertificateState = { source: "acme", hosts: own.names, failures: 0 };
const at = (days: number): Date => new Date(start.getTime() + days * DAY);

test("renewalReason: none yet, hosts not covered, two thirds of the lifetime; never a manual one", () => {
  const hosts = ["a.example.org", "shop.example.com"];
  assert.equal(
    renewalReason(undefined, undefined, hosts, false, at(0)),
    "it has no certificate yet",
  );
  // The wildcard covers the instance: no order of its own.
  assert.equal(renewalReason(undefined, undefined, hosts, true, at(0)), undefined);
  assert.equal(renewalReason(own, acme, hosts, false, at(59)), undefined);
  assert.match(renewalReason(own, acme, hosts, false, at(60)) ?? "", /two thirds of its lifetime/);
  assert.match(
    renewalReason(own, acme, [...hosts, "new.example.net"], false, at(1)) ?? "",
    /does not cover new.example.net/,
  );
  // Imported by hand (no ACME state): acc never replaces it, even close to its end.
  assert.equal(renewalReason(own, undefined, hosts, false, at(89)), undefined);
});

test("certificateWarning: after repeated failures, or when a sixth of the lifetime is left", () => {
  assert.equal(certificateWarning(own, acme, at(10)), null);
  assert.equal(certificateWarning(own, { ...acme, failures: 2, last_error: "x" }, at(61)), null);
  assert.match(
    certificateWarning(own, { ...acme, failures: 3, last_error: "CA down" }, at(62)) ?? "",
    /^certificate renewal failed 3 times \(last: CA down\); it expires 2027-03-01T00:00:00.000Z$/,
  );
  assert.match(certificateWarning(own, acme, at(76)) ?? "", /^certificate expires 2027-03-01/);
  assert.match(certificateWarning(own, undefined, at(91)) ?? "", /^certificate expired on /);
  assert.match(
    certificateWarning(undefined, { ...acme, failures: 4, last_error: "no DNS" }, at(1)) ?? "",
    /failed 4 times \(last: no DNS\); no certificate yet/,
  );
});
