// Crashes seen at once (supervisord's exit events), crash loops bounded by one backoff rule on
// every start path, and health checks that pass on 2xx (or the model's own statuses) only.
import assert from "node:assert/strict";
import { cp, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import type { Socket } from "node:net";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { createAccHome, type AccHome } from "./harness/acc.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const CRASHY_MODEL = path.resolve(here, "../../test/fixtures/models/crashy");
const RETRIES = 3;

interface EventJson {
  time: string;
  action: string;
  cause: string | null;
  outcome: string;
  message: string | null;
}

async function setUp(t: TestContext, env: NodeJS.ProcessEnv = {}): Promise<AccHome> {
  // No database here: the managed Postgres cluster is never made nor started.
  const acc = await createAccHome({
    env: {
      ACC_POSTGRES: "external",
      ACC_POSTGRES_ADMIN_URL: "postgres://nobody@127.0.0.1:1/none",
      ACC_CRASH_RETRIES: String(RETRIES),
      ...env,
    },
  });
  t.after(() => acc.cleanup());
  await cp(CRASHY_MODEL, path.join(acc.home, "models/crashy"), { recursive: true });
  await acc.ok(["boot"]);
  return acc;
}

async function events(acc: AccHome, name: string): Promise<EventJson[]> {
  return JSON.parse(await acc.ok(["events", name, "-n", "1000", "--json"])) as EventJson[];
}

async function show(acc: AccHome, name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await acc.ok(["show", name, "--json"])) as Record<string, unknown>;
}

/** The app's own count of its spawns (one line each, in its DATA_DIR). */
async function spawns(acc: AccHome, name: string): Promise<number> {
  const text = await readFile(path.join(acc.home, "instances", name, "data/spawns"), "utf8").catch(
    () => "",
  );
  return text.split("\n").filter(Boolean).length;
}

function get(
  acc: AccHome,
  host: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: acc.httpPort,
        path: "/",
        headers: { host, "user-agent": "Mozilla/5.0", ...headers },
        agent: false,
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end();
  });
}

function upgrade(acc: AccHome, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port: acc.httpPort,
      path: "/socket",
      headers: { host, connection: "Upgrade", upgrade: "websocket", "user-agent": "Mozilla/5.0" },
      agent: false,
      timeout: 30_000,
    });
    req.on("upgrade", (res: http.IncomingMessage, socket: Socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy(new Error("upgrade timed out")));
    req.on("error", reject);
    req.end();
  });
}

test(
  "crashes: seen at once, loops bounded on every path, health checks strict",
  { timeout: 300_000 },
  async (t) => {
    const acc = await setUp(t);

    await t.test("a crash after start is an event within 1 s; the state is failed", async () => {
      await acc.ok(["create", "crashy", "--name", "cr1"]);
      assert.equal((await show(acc, "cr1")).state, "running");
      const asked = Date.now();
      const bye = await acc.request("cr1.localhost", { path: "/exit?code=5" });
      assert.equal(bye.status, 200);
      let crash: EventJson | undefined;
      while (Date.now() - asked < 10_000 && crash === undefined) {
        crash = (await events(acc, "cr1")).find((e) => e.action === "crash");
      }
      assert.ok(crash, "a crash event");
      // The event's own time: looking it up through the CLI costs more than the bound.
      const after = Date.parse(crash.time) - asked;
      assert.ok(after <= 1_000, `the crash was recorded ${after} ms after the request`);
      assert.deepEqual([crash.outcome, crash.cause], ["failed", "exit"]);
      assert.match(crash.message ?? "", /^exited with status 5 after /);
      const view = await show(acc, "cr1");
      assert.equal(view.state, "failed");
      assert.equal(view.last_error, "exited with status 5");
      assert.match(String(view.last_log), /crashy: exiting with status 5 as asked/);
      const text = await acc.ok(["show", "cr1"]);
      assert.match(text, /last log +.*crashy: exiting with status 5 as asked/s);
      // The next request starts it again (one failure: its backoff is 1 s).
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const again = await acc.request("cr1.localhost");
      assert.equal(again.status, 200);
      assert.equal(again.body, "crashy cr1");
    });

    await t.test("a death by signal is recorded as one", async () => {
      const before = (await events(acc, "cr1")).filter((e) => e.action === "crash").length;
      assert.equal((await acc.request("cr1.localhost", { path: "/kill" })).status, 200);
      let crashes: EventJson[] = [];
      const since = Date.now();
      while (Date.now() - since < 10_000 && crashes.length <= before) {
        crashes = (await events(acc, "cr1")).filter((e) => e.action === "crash");
      }
      const crash = crashes.at(-1);
      assert.equal(crashes.length, before + 1);
      assert.equal(crash?.cause, "signal");
      assert.match(crash?.message ?? "", /^killed by SIGKILL/);
      // Started again for the next test (an explicit start, whatever the backoff).
      await acc.ok(["start", "cr1"]);
    });

    await t.test("acc's own stop and restart are not crashes", async () => {
      await acc.ok(["restart", "cr1"]);
      await acc.ok(["stop", "cr1"]);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const crashes = (await events(acc, "cr1")).filter((e) => e.action === "crash");
      assert.equal(crashes.length, 2, "only the crashes above");
      assert.equal((await show(acc, "cr1")).state, "stopped");
    });

    await t.test(
      "an app that dies after passing its health check is started a bounded number of times",
      async () => {
        await acc.ok([
          "create",
          "crashy",
          "--name",
          "cr2",
          "--param",
          "mode=die-after-health",
          "--no-start",
        ]);
        // A browser on the waiting page polls about every second; requests here come faster.
        const until = Date.now() + 9_000;
        const statuses = new Set<number>();
        while (Date.now() < until) {
          statuses.add((await get(acc, "cr2.localhost", { accept: "text/html" })).status);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        // 1 s, then 2 s between tries, then no more: RETRIES spawns in all.
        assert.equal(await spawns(acc, "cr2"), RETRIES);
        assert.ok(statuses.has(503), `statuses: ${[...statuses].join(",")}`);
        const view = await show(acc, "cr2");
        assert.equal(view.state, "failed");
        assert.deepEqual(view.crash_loop, { failures: RETRIES, retry_at: null });
        const answer = await get(acc, "cr2.localhost", { accept: "application/json" });
        assert.equal(answer.status, 503);
        assert.match(answer.body, /failed 3 times in a row and is not started again automatically/);
      },
    );

    await t.test(
      "a websocket upgrade to a failed instance in its loop spawns nothing",
      async () => {
        for (let i = 0; i < 5; i++) assert.equal(await upgrade(acc, "cr2.localhost"), 503);
        assert.equal(await spawns(acc, "cr2"), RETRIES);
      },
    );

    await t.test("acc start by the sysadmin tries again, and begins a new series", async () => {
      const started = await acc.run(["start", "cr2"]);
      assert.equal(started.code, 0, started.stderr);
      assert.equal(await spawns(acc, "cr2"), RETRIES + 1);
      const since = Date.now();
      while (Date.now() - since < 5_000 && (await show(acc, "cr2")).state !== "failed") {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal((await show(acc, "cr2")).state, "failed");
      // One failure in the new series: after its 1 s, a request starts it again.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      await get(acc, "cr2.localhost", { accept: "application/json" });
      assert.equal(await spawns(acc, "cr2"), RETRIES + 2);
    });

    await t.test(
      "a health check answering 302 fails the start, unless the model lists 302",
      async () => {
        const failed = await acc.run([
          "create",
          "crashy",
          "--name",
          "cr3",
          "--param",
          "mode=redirect",
        ]);
        assert.equal(failed.code, 1);
        assert.match(failed.stderr, /cr3 failed to start: health check \/healthz answered 302/);
        assert.equal((await show(acc, "cr3")).state, "failed");

        const model = path.join(acc.home, "models/crashy302");
        await cp(CRASHY_MODEL, model, { recursive: true });
        const manifest = await readFile(path.join(model, "model.toml"), "utf8");
        await writeFile(
          path.join(model, "model.toml"),
          manifest
            .replace('name = "crashy"', 'name = "crashy302"')
            .replace('path = "/healthz"', 'path = "/healthz"\nstatuses = [302]'),
        );
        await acc.ok(["create", "crashy302", "--name", "cr4", "--param", "mode=redirect"]);
        assert.equal((await show(acc, "cr4")).state, "running");
      },
    );
  },
);

test(
  "crashes: a wake the crash-loop rule refuses evicts nobody",
  { timeout: 180_000 },
  async (t) => {
    const acc = await setUp(t, { ACC_MAX_RUNNING: "1", ACC_CRASH_RETRIES: "1" });
    await acc.ok(["create", "crashy", "--name", "cr5", "--no-start"]);
    await acc.ok([
      "create",
      "crashy",
      "--name",
      "cr6",
      "--param",
      "mode=die-after-health",
      "--no-start",
    ]);
    // cr6's first wake makes room (cr5 is not running yet), passes, then it dies: given up.
    await get(acc, "cr6.localhost", { accept: "application/json" });
    const since = Date.now();
    while (Date.now() - since < 10_000 && (await show(acc, "cr6")).state !== "failed") {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal((await show(acc, "cr6")).state, "failed");
    assert.equal((await get(acc, "cr5.localhost", {})).status, 200);
    const refused = await get(acc, "cr6.localhost", { accept: "application/json" });
    assert.equal(refused.status, 503);
    assert.equal((await show(acc, "cr5")).state, "running", "cr5 was not stopped for cr6");
    assert.equal(await spawns(acc, "cr6"), 1);
  },
);
