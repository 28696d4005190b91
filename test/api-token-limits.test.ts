import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { homePaths } from "../src/core/paths.js";
import { createAccHome } from "./harness/acc.js";

/** A request to acc server's admin socket, as nginx sends it (X-Real-IP set by nginx). */
function viaNginx(
  home: string,
  path: string,
  headers: Record<string, string>,
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: homePaths(home).adminSocket, path, headers }, resolve);
    req.on("error", reject);
    req.end();
  });
}

async function bodyOf(res: http.IncomingMessage): Promise<string> {
  let body = "";
  res.setEncoding("utf8");
  for await (const chunk of res) body += chunk as string;
  return body;
}

test(
  "API tokens: Retry-After says when a throttled source may try again; a revoked token's open stream ends",
  { timeout: 180_000 },
  async (t) => {
    const acc = await createAccHome({
      env: { ACC_POSTGRES: "external", ACC_POSTGRES_ADMIN_URL: "postgres://nobody@127.0.0.1:1/x" },
    });
    t.after(() => acc.cleanup());
    await acc.ok(["boot"]);

    // Ten failures from one source within a minute, then the eleventh attempt is refused
    // before its token is looked at, with the seconds left until the oldest failure expires.
    const guesser = { "x-real-ip": "127.0.0.77", authorization: "Bearer acc_nothere_guess" };
    for (let i = 0; i < 10; i++) {
      const res = await viaNginx(acc.home, "/api/v1/instances", guesser);
      await bodyOf(res);
      assert.equal(res.statusCode, 401);
    }
    const limited = await viaNginx(acc.home, "/api/v1/instances", guesser);
    const limitedBody = JSON.parse(await bodyOf(limited)) as { error: { code: string } };
    assert.equal(limited.statusCode, 429);
    assert.equal(limitedBody.error.code, "ACC_RATE_LIMITED");
    const retryAfter = Number(limited.headers["retry-after"]);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${limited.headers["retry-after"]}`);

    const created = JSON.parse(
      await acc.ok(["token", "create", "--scope", "read", "--name", "watcher", "--json"]),
    ) as { token: string };
    const stream = await viaNginx(acc.home, "/api/v1/events?follow=1", {
      "x-real-ip": "127.0.0.78",
      authorization: `Bearer ${created.token}`,
    });
    assert.equal(stream.statusCode, 200);
    assert.match(String(stream.headers["content-type"]), /text\/event-stream/);
    const ended = bodyOf(stream);
    const revokedAt = Date.now();
    await acc.ok(["token", "revoke", "watcher"]);
    const text = await ended;
    assert.ok(Date.now() - revokedAt < 15_000, "the stream ended within seconds of the revoke");
    assert.match(text, /event: error\ndata: .*"code":"ACC_UNAUTHORIZED".*watcher was revoked/);
  },
);
