import assert from "node:assert/strict";
import { test } from "node:test";
import { escapeUntrusted } from "./untrusted-text.js";

test("escapeUntrusted: nothing an app printed can drive the reader's terminal", () => {
  const attack = "ok\x1b]0;pwned\x07\x1b[2J\rline\u202eevil\x9b";
  assert.equal(
    escapeUntrusted(attack, { keepLines: true }),
    "ok\\x1b]0;pwned\\x07\\x1b[2J\\rline\\u202eevil\\x9b",
  );
  assert.equal(escapeUntrusted("a\nb\tc", { keepLines: true }), "a\nb\tc");
  assert.equal(escapeUntrusted("a\nb\tc"), "a\\nb\\tc");
  assert.equal(escapeUntrusted("plain text, café"), "plain text, café");
});
