import assert from "node:assert/strict";
import { test } from "node:test";
import { AccError } from "../lib/errors.js";
import {
  showValue,
  validateHomePath,
  validateHostname,
  validateInstanceHost,
  validateInstanceName,
  validateNewInstanceName,
  validatePort,
} from "./validate.js";

const hostile = [
  "",
  "-foo",
  "foo-",
  "Foo",
  "foo;bar",
  "foo\nbar",
  "foo{",
  "}",
  "..",
  "../etc",
  "a/b",
  "a'b",
  'a"b',
  "$foo",
  "a b",
  "café",
  "x".repeat(41),
  "x".repeat(10_000),
  "foo.bar",
  "foo_bar",
];

test("instance names: DNS labels only", () => {
  for (const good of ["a", "hello1", "acme-crm", "x".repeat(40), "0abc"])
    assert.equal(validateInstanceName(good), good);
  for (const bad of hostile) {
    assert.throws(
      () => validateInstanceName(bad),
      (error: unknown) =>
        error instanceof AccError && error.code === "ACC_INVALID" && !error.message.includes("\n"),
      JSON.stringify(bad.slice(0, 20)),
    );
  }
});

test("a 10 kB bad value gives a short one-line error", () => {
  try {
    validateInstanceName("y".repeat(10_000));
    assert.fail("accepted");
  } catch (error) {
    assert.ok(error instanceof AccError);
    assert.ok(error.message.length < 200, error.message);
    assert.match(error.message, /10000 characters/);
  }
});

test("host names: lower-cased DNS names only", () => {
  assert.equal(validateHostname("CRM.Acme.Example"), "crm.acme.example");
  assert.equal(validateHostname("a.localhost"), "a.localhost");
  for (const bad of [
    "",
    "a..b",
    "-a.b",
    "a b",
    "a;b",
    "a\nb",
    "a{b",
    "a}b",
    "*.example.com",
    "a/b",
    "$host",
    "é.fr",
    `${"a".repeat(64)}.com`,
    "x".repeat(10_000),
  ]) {
    assert.throws(() => validateHostname(bad), AccError, JSON.stringify(bad.slice(0, 20)));
  }
});

test("an instance's extra hosts: its own names and names outside the domain", () => {
  const foo = { name: "foo", domain: "localhost" };
  for (const good of [
    "foo.localhost",
    "sub.foo.localhost",
    "a.b.foo.localhost",
    "crm.example.com",
    "intranet",
    "foo",
    "foolocalhost",
    "localhost.example.com",
    "127.0.0.1.example.com",
    "10x",
    "a.0x7fz",
  ])
    assert.equal(validateInstanceHost(good, foo), good);
  assert.equal(validateInstanceHost("Sub.FOO.localhost", foo), "sub.foo.localhost");
  const crm = { name: "crm", domain: "apps.example.com" };
  for (const good of [
    "crm.apps.example.com",
    "x.crm.apps.example.com",
    "example.com",
    "bar.localhost",
  ])
    assert.equal(validateInstanceHost(good, crm), good);
});

test("an instance's extra hosts: refused with one line naming the value and a hint", () => {
  const refused: [string, { name: string; domain: string }, RegExp][] = [
    // nginx reads these as directives inside `map $host $acc_instance { hostnames; ... }`.
    ["default", { name: "foo", domain: "localhost" }, /directive/],
    ["include", { name: "foo", domain: "localhost" }, /directive/],
    ["hostnames", { name: "foo", domain: "localhost" }, /directive/],
    ["volatile", { name: "foo", domain: "localhost" }, /directive/],
    ["DEFAULT", { name: "foo", domain: "localhost" }, /directive/],
    ["localhost", { name: "foo", domain: "localhost" }, /every request/],
    ["localhost", { name: "crm", domain: "example.com" }, /every request/],
    ["127.0.0.1", { name: "foo", domain: "localhost" }, /IP address/],
    ["10.0.0.1", { name: "foo", domain: "localhost" }, /IP address/],
    ["10.1", { name: "foo", domain: "localhost" }, /IP address/],
    ["4294967295", { name: "foo", domain: "localhost" }, /IP address/],
    ["0x7f000001", { name: "foo", domain: "localhost" }, /IP address/],
    ["a.b.0x7f", { name: "foo", domain: "localhost" }, /IP address/],
    ["bar.localhost", { name: "foo", domain: "localhost" }, /instance bar's own host/],
    ["x.bar.localhost", { name: "foo", domain: "localhost" }, /instance bar's own host/],
    ["foo.bar.localhost", { name: "foo", domain: "localhost" }, /instance bar's own host/],
    ["xfoo.localhost", { name: "foo", domain: "localhost" }, /instance xfoo's own host/],
    ["example.com", { name: "crm", domain: "example.com" }, /not at example\.com/],
    ["erp.example.com", { name: "crm", domain: "example.com" }, /instance erp's own host/],
    ["www.erp.example.com", { name: "crm", domain: "example.com" }, /instance erp's own host/],
    // The old rules still hold.
    ["a..b", { name: "foo", domain: "localhost" }, /invalid host name/],
    ["*.example.com", { name: "foo", domain: "localhost" }, /invalid host name/],
    ["~^.*$", { name: "foo", domain: "localhost" }, /invalid host name/],
    ["\\default", { name: "foo", domain: "localhost" }, /invalid host name/],
    [`${"a".repeat(64)}.com`, { name: "foo", domain: "localhost" }, /invalid host name/],
  ];
  for (const [host, owner, why] of refused) {
    assert.throws(
      () => validateInstanceHost(host, owner),
      (error: unknown) =>
        error instanceof AccError &&
        error.code === "ACC_INVALID" &&
        error.message.startsWith(`invalid host name ${showValue(host)}`) &&
        why.test(error.message) &&
        !error.message.includes("\n") &&
        (error.hint ?? "").length > 0,
      `${host} for ${owner.name}.${owner.domain}`,
    );
  }
});

test("admin_host is acc's: no instance is named its first label or takes it as a host", () => {
  assert.equal(validateNewInstanceName("crm", "acc.localhost"), "crm");
  assert.equal(validateNewInstanceName("acc2", "acc.localhost"), "acc2");
  assert.equal(validateNewInstanceName("acc", "admin.example.com"), "acc");
  for (const [name, adminHost] of [
    ["acc", "acc.localhost"],
    ["admin", "admin.example.com"],
    ["admin", "Admin.Example.com"],
  ] as const) {
    assert.throws(
      () => validateNewInstanceName(name, adminHost),
      (error: unknown) =>
        error instanceof AccError &&
        error.code === "ACC_INVALID" &&
        error.message.startsWith(`invalid instance name "${name}": reserved`) &&
        error.message.includes(adminHost) &&
        (error.hint ?? "").includes("admin_host"),
    );
  }
  // Still an invalid name first.
  assert.throws(() => validateNewInstanceName("a;b", "acc.localhost"), /invalid instance name/);

  const owner = { name: "crm", domain: "localhost", adminHost: "admin.example.com" };
  assert.equal(validateInstanceHost("x.admin.example.com", owner), "x.admin.example.com");
  for (const host of ["admin.example.com", "ADMIN.example.com"]) {
    assert.throws(
      () => validateInstanceHost(host, owner),
      (error: unknown) =>
        error instanceof AccError &&
        error.code === "ACC_INVALID" &&
        error.message ===
          `invalid host name ${showValue(host)}: it is acc's admin host (admin_host in acc.toml)` &&
        (error.hint ?? "").length > 0,
    );
  }
  // Under the domain, the admin host's own reason comes first.
  assert.throws(
    () => validateInstanceHost("acc.localhost", { ...owner, adminHost: "acc.localhost" }),
    /acc's admin host/,
  );
});

test("ports", () => {
  assert.equal(validatePort("8080"), 8080);
  for (const bad of ["0", "65536", "-1", "80a", "", "1e3"])
    assert.throws(() => validatePort(bad), AccError);
});

test("home paths: absolute, no characters that nginx or supervisord would read specially", () => {
  assert.equal(validateHomePath("/var/lib/acc"), "/var/lib/acc");
  for (const bad of [
    "relative",
    "/tmp/a b",
    "/tmp/a%b",
    "/tmp/a;b",
    "/tmp/../etc",
    "/tmp/a\nb",
    "/tmp/$x",
  ]) {
    assert.throws(() => validateHomePath(bad), AccError, bad);
  }
});
