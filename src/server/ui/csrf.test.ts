import assert from "node:assert/strict";
import { test } from "node:test";
import { csrfMatches, newCsrfToken } from "./csrf.js";

test("a form's CSRF token matches only the session's own", () => {
  const token = newCsrfToken();
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(newCsrfToken(), token);
  assert.equal(csrfMatches(token, token), true);
  assert.equal(csrfMatches(token, `${token}x`), false);
  assert.equal(csrfMatches(token, token.slice(0, -1)), false);
  assert.equal(csrfMatches(token, newCsrfToken()), false);
  for (const missing of [undefined, null, "", 42, [token], { token }])
    assert.equal(csrfMatches(token, missing), false, JSON.stringify(missing));
  // No session token (none issued) never matches, even an empty form field.
  assert.equal(csrfMatches("", ""), false);
});
