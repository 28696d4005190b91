import assert from "node:assert/strict";
import { test } from "node:test";
import { AccError } from "../lib/errors.js";
import {
  validateHomePath,
  validateHostname,
  validateInstanceName,
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
