import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { cp } from "node:fs/promises";
import http from "node:http";
import type { Socket } from "node:net";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { createAccHome, type AccHome } from "./harness/acc.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const ECHO_MODEL = path.resolve(here, "../../test/fixtures/models/echo");

interface Answer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function send(
  acc: AccHome,
  host: string,
  options: {
    method?: string;
    path?: string;
    body?: Buffer;
    headers?: Record<string, string>;
    agent?: http.Agent;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: acc.httpPort,
        method: options.method ?? "GET",
        path: options.path ?? "/",
        headers: { host, ...options.headers },
        agent: options.agent ?? false,
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            headers: res.headers,
          }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(options.body);
  });
}

interface EventView {
  instance: string;
  action: string;
  cause: string | null;
  outcome: string;
  message: string | null;
}

interface UpgradeAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** What the app echoed on the upgraded connection (101 only). */
  echoed?: string;
}

/** An `Upgrade: websocket` request through acc's nginx; on a 101, sends "ping" and reads the echo. */
function upgrade(
  acc: AccHome,
  host: string,
  headers: Record<string, string> = {},
): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port: acc.httpPort,
      path: "/socket",
      headers: { host, connection: "Upgrade", upgrade: "websocket", ...headers },
      agent: false,
      timeout: 60_000,
    });
    req.on("upgrade", (res: http.IncomingMessage, socket: Socket) => {
      socket.once("data", (data: Buffer) => {
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, echoed: data.toString() });
      });
      socket.on("error", reject);
      socket.write("ping");
    });
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("timeout", () => req.destroy(new Error("upgrade timed out")));
    req.on("error", reject);
    req.end();
  });
}

async function events(acc: AccHome, name: string): Promise<EventView[]> {
  const { openSqliteStore } = await import("../src/store/open.js");
  const store = openSqliteStore(path.join(acc.home, "state.db"));
  try {
    return (await store.listEvents({ instance: name, limit: 1000 })).map((e) => ({
      instance: e.instance ?? "",
      action: e.action,
      cause: e.cause,
      outcome: e.outcome,
      message: e.message,
    }));
  } finally {
    await store.close();
  }
}

async function starts(acc: AccHome, name: string): Promise<EventView[]> {
  return (await events(acc, name)).filter((e) => e.action === "start");
}

async function state(acc: AccHome, name: string): Promise<string> {
  return (JSON.parse(await acc.ok(["show", name, "--json"])) as { state: string }).state;
}

async function setUp(t: TestContext, env: NodeJS.ProcessEnv = {}): Promise<AccHome> {
  const acc = await createAccHome({ env });
  t.after(() => acc.cleanup());
  await cp(ECHO_MODEL, path.join(acc.home, "models/echo"), { recursive: true });
  await acc.ok(["boot"]);
  return acc;
}

test(
  "waker: stopped instances are started by their first request and serve it",
  { timeout: 180_000 },
  async (t) => {
    const acc = await setUp(t);
    await acc.ok(["create", "echo", "--name", "e1", "--no-start"]);

    await t.test("a GET is served by the app itself, after one start", async () => {
      const answer = await send(acc, "e1.localhost", {
        path: "/some/path?q=1",
        headers: { "x-test": "kept" },
      });
      assert.equal(answer.status, 200);
      const body = JSON.parse(answer.body) as { instance: string; url: string; header: string };
      assert.deepEqual([body.instance, body.url, body.header], ["e1", "/some/path?q=1", "kept"]);
      const wakes = await starts(acc, "e1");
      assert.equal(wakes.length, 1);
      assert.equal(wakes[0]?.cause, "wake");
      assert.match(wakes[0]?.message ?? "", /GET e1\.localhost\/some\/path\?q=1 ua=/);
      assert.equal(await state(acc, "e1"), "running");
    });

    await t.test("a 50 MB POST reaches the stopped app whole", async () => {
      await acc.ok(["stop", "e1"]);
      const body = randomBytes(50 * 1024 * 1024);
      const answer = await send(acc, "e1.localhost", { method: "POST", path: "/upload", body });
      assert.equal(answer.status, 200);
      const echoed = JSON.parse(answer.body) as { method: string; bytes: number; sha256: string };
      assert.equal(echoed.method, "POST");
      assert.equal(echoed.bytes, body.length);
      assert.equal(echoed.sha256, createHash("sha256").update(body).digest("hex"));
    });

    await t.test(
      "200 concurrent requests and an acc start at once: all answered by the app, one start",
      async () => {
        await acc.ok(["stop", "e1"]);
        const before = (await starts(acc, "e1")).length;
        const agent = new http.Agent({ maxSockets: 200 });
        t.after(() => agent.destroy());
        const requests = Array.from({ length: 200 }, (_, i) =>
          send(acc, "e1.localhost", { path: `/r${i}`, agent }),
        );
        const cli = acc.run(["start", "e1"]);
        const answers = await Promise.all(requests);
        assert.equal((await cli).code, 0);
        assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
        answers.forEach((a, i) =>
          assert.equal((JSON.parse(a.body) as { url: string }).url, `/r${i}`),
        );
        assert.equal((await starts(acc, "e1")).length - before, 1, "exactly one start");
      },
    );

    await t.test(
      "a client that leaves while waiting does not cancel the start for others",
      async () => {
        await acc.ok(["stop", "e1"]);
        const leaving = http.request({
          host: "127.0.0.1",
          port: acc.httpPort,
          path: "/",
          headers: { host: "e1.localhost" },
        });
        leaving.on("error", () => undefined);
        leaving.end();
        setTimeout(() => leaving.destroy(), 5);
        const staying = await send(acc, "e1.localhost", { path: "/stay" });
        assert.equal(staying.status, 200);
      },
    );

    await t.test("suspended: 503 page, no start; resume makes it wake again", async () => {
      await acc.ok(["suspend", "e1"]);
      const before = (await starts(acc, "e1")).length;
      const answer = await send(acc, "e1.localhost", { headers: { accept: "text/html" } });
      assert.equal(answer.status, 503);
      assert.match(answer.body, /e1 is suspended/);
      assert.equal((await starts(acc, "e1")).length, before);
      await acc.ok(["resume", "e1"]);
      assert.equal((await send(acc, "e1.localhost")).status, 200);
    });

    await t.test(
      "the wake filter: crawlers and uptime checkers get a 503 with Retry-After, no start",
      async () => {
        await acc.ok(["stop", "e1"]);
        const before = (await starts(acc, "e1")).length;
        for (const ua of ["Mozilla/5.0 (compatible; Googlebot/2.1)", "UptimeRobot/2.0"]) {
          const answer = await send(acc, "e1.localhost", { headers: { "user-agent": ua } });
          assert.equal(answer.status, 503, ua);
          assert.ok(answer.headers["retry-after"], ua);
        }
        assert.equal((await starts(acc, "e1")).length, before);
        assert.equal(await state(acc, "e1"), "stopped");
      },
    );

    await t.test(
      "a request the running app may have seen is never sent again, GET or POST",
      async () => {
        await acc.ok(["start", "e1"]);
        // As nginx hands it over after a failure on an accepted connection (connect time set),
        // on the waker's socket (root may open it, as nginx's workers).
        const direct = async (method: string, to = "socket"): Promise<number> =>
          new Promise((resolve, reject) => {
            const req = http.request(
              {
                ...(to === "socket"
                  ? { socketPath: path.join(acc.home, "waker", "waker.sock") }
                  : { host: "127.0.0.1", port: Number(acc.env.ACC_SERVER_PORT) }),
                method,
                path: "/again",
                headers: {
                  host: "e1.localhost",
                  "x-acc-instance": "e1",
                  "x-acc-connect-time": "0.001",
                },
              },
              (res) => {
                res.resume();
                resolve(res.statusCode ?? 0);
              },
            );
            req.on("error", reject);
            req.end();
          });
        assert.equal(await direct("GET"), 502);
        assert.equal(await direct("POST"), 502);
        // The TCP port, which any local user reaches, serves nothing that names an instance.
        assert.equal(await direct("GET", "tcp"), 404);
      },
    );

    await t.test("unknown hosts get 404 and no instance is started", async () => {
      assert.equal((await send(acc, "nobody.localhost")).status, 404);
    });

    await t.test(
      "a client cannot pick the instance with its own X-Acc-Instance header",
      async () => {
        await acc.ok(["create", "echo", "--name", "e2", "--no-start"]);
        const answer = await send(acc, "e1.localhost", { headers: { "x-acc-instance": "e2" } });
        assert.equal((JSON.parse(answer.body) as { instance: string }).instance, "e1");
        assert.equal(await state(acc, "e2"), "stopped");
      },
    );
  },
);

test("waker: slow boots, crashes and unhealthy apps", { timeout: 180_000 }, async (t) => {
  // A failed instance is then not started again automatically, however slow the test runs.
  const acc = await setUp(t, { ACC_CRASH_RETRIES: "1" });

  await t.test(
    "a browser gets the waiting page at once, then the app when it is ready",
    async () => {
      await acc.ok([
        "create",
        "echo",
        "--name",
        "slow",
        "--param",
        "boot_delay_ms=2500",
        "--no-start",
      ]);
      const started = Date.now();
      const first = await send(acc, "slow.localhost", {
        headers: { accept: "text/html,application/xhtml+xml" },
      });
      const waited = Date.now() - started;
      assert.equal(first.status, 503);
      assert.equal(first.headers["x-acc-state"], "waiting");
      assert.match(first.body, /slow is starting/);
      assert.ok(waited < 2000, `the waiting page came after ${waited} ms`);
      // What the page's script does: long-poll the wait path, then reload.
      const poll = await send(acc, "slow.localhost", {
        path: "/.well-known/acc/wait",
        headers: { accept: "application/json" },
      });
      assert.equal(poll.status, 200);
      const reloaded = await send(acc, "slow.localhost", { headers: { accept: "text/html" } });
      assert.equal(reloaded.status, 200);
      assert.equal((JSON.parse(reloaded.body) as { instance: string }).instance, "slow");
      assert.equal((await starts(acc, "slow")).length, 1);
    },
  );

  await t.test("an API client is held until the app answers", async () => {
    await acc.ok(["stop", "slow"]);
    const answer = await send(acc, "slow.localhost", { headers: { accept: "application/json" } });
    assert.equal(answer.status, 200);
  });

  for (const mode of ["crash", "unhealthy"]) {
    await t.test(
      `an app that ${mode === "crash" ? "crashes at start" : "never passes its health check"}: 503, failed, every request answered`,
      async () => {
        const name = `bad-${mode}`;
        await acc.ok(["create", "echo", "--name", name, "--param", `mode=${mode}`, "--no-start"]);
        const answers = await Promise.all(
          Array.from({ length: 5 }, () =>
            send(acc, `${name}.localhost`, { headers: { accept: "application/json" } }),
          ),
        );
        for (const answer of answers) {
          assert.equal(answer.status, 503);
          assert.equal(
            (JSON.parse(answer.body) as { error: { code: string } }).error.code,
            "ACC_START_FAILED",
          );
        }
        assert.equal(await state(acc, name), "failed");
        const failed = (await starts(acc, name)).filter((e) => e.outcome === "failed");
        assert.equal(failed.length, 1, "one failed start for all of them");
        const html = await send(acc, `${name}.localhost`, { headers: { accept: "text/html" } });
        assert.equal(html.status, 503);
        assert.match(html.body, new RegExp(`${name} could not start`));
      },
    );
  }
});

test(
  "waker: a websocket upgrade gets the same answers as a request before a wake",
  { timeout: 180_000 },
  async (t) => {
    // One failure and an instance is not started again automatically: no timing in the test.
    const acc = await setUp(t, { ACC_CRASH_RETRIES: "1" });
    await acc.ok(["create", "echo", "--name", "hzws1", "--no-start"]);

    await t.test("a crawler's upgrade to a stopped instance: 503, no start", async () => {
      const answer = await upgrade(acc, "hzws1.localhost", {
        "user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1)",
      });
      assert.equal(answer.status, 503);
      assert.equal(answer.headers["retry-after"], "300");
      assert.equal(answer.headers["x-acc-state"], "filtered");
      const listed = JSON.parse(await acc.ok(["list", "--json"])) as {
        name: string;
        state: string;
      }[];
      assert.equal(listed.find((i) => i.name === "hzws1")?.state, "stopped");
      assert.equal((await starts(acc, "hzws1")).length, 0);
    });

    await t.test("a browser's upgrade wakes it and reaches the app", async () => {
      const answer = await upgrade(acc, "hzws1.localhost", { "user-agent": "Mozilla/5.0" });
      assert.equal(answer.status, 101);
      assert.equal(answer.headers["x-echo-instance"], "hzws1");
      assert.equal(answer.echoed, "ping");
      const wakes = await starts(acc, "hzws1");
      assert.deepEqual(
        wakes.map((e) => [e.cause, e.outcome]),
        [["wake", "ok"]],
      );
      assert.match(wakes[0]?.message ?? "", /GET hzws1\.localhost\/socket ua="Mozilla\/5\.0"/);
      assert.equal(await state(acc, "hzws1"), "running");
    });

    await t.test("a suspended instance: 503, no start", async () => {
      await acc.ok(["suspend", "hzws1"]);
      const answer = await upgrade(acc, "hzws1.localhost");
      assert.equal(answer.status, 503);
      assert.equal(answer.headers["x-acc-state"], "suspended");
      assert.equal((await starts(acc, "hzws1")).length, 1);
      assert.equal(await state(acc, "hzws1"), "suspended");
    });

    await t.test("an instance that just failed: 503 at once, not started again", async () => {
      await acc.ok(["create", "echo", "--name", "hzws2", "--param", "mode=crash", "--no-start"]);
      const first = await send(acc, "hzws2.localhost", { headers: { accept: "application/json" } });
      assert.equal(first.status, 503);
      assert.equal(await state(acc, "hzws2"), "failed");
      const answer = await upgrade(acc, "hzws2.localhost");
      assert.equal((await starts(acc, "hzws2")).length, 1, "one start, the failed one");
      assert.equal(answer.status, 503);
      assert.equal(answer.headers["x-acc-state"], "failed");
      assert.equal(answer.headers["retry-after"], undefined);
    });
  },
);
