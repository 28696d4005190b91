import assert from "node:assert/strict";
import { test } from "node:test";
import { createSessionStore, sessionCookie, sessionIdOf } from "./sessions.js";

const caller = {
  kind: "token" as const,
  id: "0123456789ab",
  name: "t",
  scope: { kind: "admin" as const },
};

test("a session ends when idle, at its longest life, and when deleted", () => {
  let now = 1_000_000;
  const store = createSessionStore({ idleMs: 1000, maxMs: 5000, now: () => now });
  const session = store.create("acc_secret", caller);
  assert.match(session.id, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(store.get(session.id)?.secret, "acc_secret");
  // Each request pushes the idle expiry back...
  for (let i = 0; i < 5; i++) {
    now += 900;
    assert.ok(store.get(session.id), `alive at ${i}`);
  }
  // ...but never past the longest life.
  now += 900;
  assert.equal(store.get(session.id), undefined);
  const idle = store.create("s", caller);
  now += 1000;
  assert.equal(store.get(idle.id), undefined);
  const gone = store.create("s", caller);
  store.delete(gone.id);
  assert.equal(store.get(gone.id), undefined);
  assert.equal(store.get(undefined), undefined);
  assert.equal(store.get("nope"), undefined);
});

test("the oldest sessions go first past the maximum", () => {
  const store = createSessionStore({ max: 2 });
  const a = store.create("a", caller);
  const b = store.create("b", caller);
  const c = store.create("c", caller);
  assert.equal(store.get(a.id), undefined);
  assert.ok(store.get(b.id) && store.get(c.id));
  assert.equal(store.size(), 2);
});

test("the cookie: HttpOnly, SameSite=Strict, Path=/ui, Secure under TLS; read back strictly", () => {
  const session = createSessionStore().create("s", caller);
  const cookie = sessionCookie(session, false);
  assert.equal(cookie, `acc_session=${session.id}; Path=/ui; HttpOnly; SameSite=Strict`);
  assert.match(sessionCookie(session, true), /; Secure$/);
  assert.match(sessionCookie(undefined, false), /^acc_session=; Max-Age=0;/);
  assert.equal(sessionIdOf(`a=b; acc_session=${session.id}; c=d`), session.id);
  assert.equal(sessionIdOf("acc_session=../../etc"), undefined);
  assert.equal(sessionIdOf(undefined), undefined);
});
