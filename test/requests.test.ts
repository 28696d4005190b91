// No request runs twice: a request the app accepted is never sent to it again by acc, whatever
// the method; a stop drains (what the app has finishes, what comes meanwhile waits for the next
// start); a request longer than the instance's request_timeout is a 504, once.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { test } from "node:test";
import { FIXTURE_MODELS, accOk, bootHome, instanceView, requireRoot } from "./harness/attacker.js";
import type { AccHome } from "./harness/acc.js";

const skip = requireRoot();

interface Answer {
  status: number;
  body: string;
  ms: number;
}

function send(
  acc: AccHome,
  host: string,
  options: { method?: string; path: string; accept?: string },
): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: acc.httpPort,
        method: options.method ?? "GET",
        path: options.path,
        headers: { host, ...(options.accept ? { accept: options.accept } : {}) },
        agent: false,
        timeout: 60_000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - started }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(options.method === "POST" ? "form=1" : undefined);
  });
}

/** How many times the app received this request line (its own count, in its data folder). */
async function received(acc: AccHome, name: string, line: string): Promise<number> {
  const log = await readFile(
    path.join(acc.home, "instances", name, "data/calls.log"),
    "utf8",
  ).catch(() => "");
  return log.split("\n").filter((l) => l === line).length;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test(
  "requests run once: stops drain, cut requests are never sent again, timeouts are 504s",
  { skip, timeout: 240_000 },
  async (t) => {
    assert.ok(FIXTURE_MODELS);
    const acc = await bootHome(t, ["slow"]);
    await accOk(acc, ["create", "slow", "--name", "rqa"]);
    const host = "rqa.localhost";

    await t.test(
      "a POST in flight when acc stop runs finishes, once; the instance stays stopped",
      async () => {
        const post = send(acc, host, { method: "POST", path: "/drain?ms=600" });
        await sleep(200);
        await accOk(acc, ["stop", "rqa"]);
        const answer = await post;
        assert.equal(answer.status, 200, answer.body);
        assert.equal(await received(acc, "rqa", "POST /drain?ms=600"), 1);
        await sleep(500);
        assert.equal((await instanceView(acc, "rqa")).state, "stopped", "nothing woke it again");
      },
    );

    await t.test("a POST cut by a stop gets a 502 and is never sent again", async () => {
      await accOk(acc, ["start", "rqa"]);
      const post = send(acc, host, {
        method: "POST",
        path: "/cut?ms=2500",
        accept: "application/json",
      });
      await sleep(200);
      await accOk(acc, ["stop", "rqa"]);
      const answer = await post;
      assert.equal(answer.status, 502, answer.body);
      assert.match(answer.body, /"error"/, "a JSON client gets JSON");
      await sleep(500);
      assert.equal(await received(acc, "rqa", "POST /cut?ms=2500"), 1);
      assert.equal((await instanceView(acc, "rqa")).state, "stopped", "the replay did not wake it");
    });

    await t.test(
      "a restart drains: the POST in flight finishes, one that comes meanwhile waits",
      async () => {
        await accOk(acc, ["start", "rqa"]);
        const first = send(acc, host, { method: "POST", path: "/first?ms=600" });
        await sleep(200);
        const restart = accOk(acc, ["restart", "rqa"]);
        await sleep(100);
        const second = send(acc, host, { method: "POST", path: "/second?ms=0" });
        const [a, b] = await Promise.all([first, second]);
        await restart;
        assert.equal(a.status, 200, a.body);
        assert.equal(b.status, 200, b.body);
        assert.equal(await received(acc, "rqa", "POST /first?ms=600"), 1);
        assert.equal(await received(acc, "rqa", "POST /second?ms=0"), 1);
        assert.equal((await instanceView(acc, "rqa")).state, "running");
      },
    );

    await t.test("longer than request_timeout (3 s): a 504 after 3 s, sent once", async () => {
      const answer = await send(acc, host, { path: "/long?ms=400000" });
      assert.equal(answer.status, 504);
      assert.ok(answer.ms >= 2900 && answer.ms < 10_000, `answered after ${answer.ms} ms`);
      await sleep(500);
      assert.equal(await received(acc, "rqa", "GET /long?ms=400000"), 1);
      assert.equal((await instanceView(acc, "rqa")).state, "running");
    });

    await t.test("the same through the waker, for a stopped instance: 504, once", async () => {
      await accOk(acc, ["stop", "rqa"]);
      const answer = await send(acc, host, {
        path: "/woken?ms=400000",
        accept: "application/json",
      });
      assert.equal(answer.status, 504, answer.body);
      assert.match(answer.body, /did not answer within 3 s/);
      await sleep(500);
      assert.equal(await received(acc, "rqa", "GET /woken?ms=400000"), 1);
    });
  },
);
