import assert from "node:assert/strict";
import { test } from "node:test";
import { isAccError } from "../lib/errors.js";
import type { Permission, TokenScope } from "../operations/types.js";
import { allows, formatScope, parseScope } from "./scopes.js";

test("parseScope: admin, read, instance:NAME; formatScope gives the text back", () => {
  for (const text of ["admin", "read", "instance:shop-2", `instance:${"a".repeat(40)}`]) {
    assert.equal(formatScope(parseScope(text)), text);
  }
  assert.deepEqual(parseScope("instance:acme"), { kind: "instance", name: "acme" });
  assert.deepEqual(parseScope("admin"), { kind: "admin" });
});

test("parseScope: a bad scope is ACC_INVALID naming the value, with a hint", () => {
  for (const text of [
    "",
    "Admin",
    "write",
    " read",
    "instance",
    "instance:",
    "instance:Bad_Name",
    "instance:-lead",
    "instance:a/b",
    `instance:${"a".repeat(41)}`,
    "instance:a:b",
    "instance:acme\n",
  ]) {
    assert.throws(
      () => parseScope(text),
      (e: unknown) =>
        isAccError(e, "ACC_INVALID") &&
        e.message === `invalid scope ${JSON.stringify(text)}` &&
        e.hint !== undefined,
      text,
    );
  }
  assert.throws(() => parseScope("x".repeat(1000)), /\(1000 characters\)/);
});

test("allows: admin everything, read only read, instance only its own instance's read and change", () => {
  const admin: TokenScope = { kind: "admin" };
  const read: TokenScope = { kind: "read" };
  const acme: TokenScope = { kind: "instance", name: "acme" };
  const all: Permission[] = ["read", "change", "secret"];
  for (const p of all) {
    for (const it of [true, false]) {
      for (const name of ["acme", "other", undefined]) {
        assert.equal(allows(admin, p, it, name), true);
        assert.equal(allows(read, p, it, name), p === "read");
      }
    }
  }
  assert.equal(allows(acme, "read", true, "acme"), true);
  assert.equal(allows(acme, "change", true, "acme"), true);
  assert.equal(allows(acme, "secret", true, "acme"), false, "never secrets");
  assert.equal(
    allows(acme, "read", false, "acme"),
    false,
    "only operations open to instance tokens",
  );
  assert.equal(allows(acme, "read", true, "other"), false, "never another instance");
  assert.equal(allows(acme, "read", true, undefined), false, "never a list");
  assert.equal(allows(acme, "change", true, "ACME"), false);
});
