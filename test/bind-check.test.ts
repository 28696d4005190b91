// Instances listen on loopback only: a start finds an app listening beyond it (a warning, or a
// failed start with strict_bind = true), and acc show and acc doctor say so while it runs.
import assert from "node:assert/strict";
import { cp, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { portHolders } from "../src/services/listeners.js";
import { openSqliteStore } from "../src/store/open.js";
import { createAccHome, type AccHome } from "./harness/acc.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const LISTEN_MODEL = path.resolve(here, "../../test/fixtures/models/listen");

interface ShowView {
  state: string;
  port: number;
  last_error: string | null;
  exposed_listeners: string[] | null;
}

async function events(
  acc: AccHome,
  name: string,
): Promise<{ action: string; outcome: string; message: string | null }[]> {
  const store = openSqliteStore(path.join(acc.home, "state.db"));
  try {
    return (await store.listEvents({ instance: name, limit: 100 })).map((e) => ({
      action: e.action,
      outcome: e.outcome,
      message: e.message,
    }));
  } finally {
    await store.close();
  }
}

async function show(acc: AccHome, name: string): Promise<ShowView> {
  return JSON.parse(await acc.ok(["show", name, "--json"])) as ShowView;
}

/** Whether a process of the instance's own user listens on the port (acc-ports may hold it). */
async function instanceListens(name: string, port: number): Promise<boolean> {
  return (await portHolders(port)).some((listener) => listener.user === `acc-${name}`);
}

test(
  "bind check: an instance listening beyond loopback is a warning, or a failed start with strict_bind",
  { timeout: 240_000 },
  async (t) => {
    const acc = await createAccHome();
    t.after(() => acc.cleanup());
    await cp(LISTEN_MODEL, path.join(acc.home, "models/listen"), { recursive: true });
    // The same app, its model stricter.
    const strictDir = path.join(acc.home, "models/listen-strict");
    await cp(LISTEN_MODEL, strictDir, { recursive: true });
    const manifest = await readFile(path.join(strictDir, "model.toml"), "utf8");
    await writeFile(
      path.join(strictDir, "model.toml"),
      manifest.replace('name = "listen"\n', 'name = "listen-strict"\nstrict_bind = true\n'),
    );
    await acc.ok(["boot"]);

    await t.test("0.0.0.0: the start succeeds, with a warning event; show says so", async () => {
      await acc.ok(["create", "listen", "--name", "lsopen"]);
      const view = await show(acc, "lsopen");
      assert.equal(view.state, "running");
      const where = `0.0.0.0:${view.port}`;
      assert.deepEqual(view.exposed_listeners, [where]);
      assert.deepEqual(
        (await events(acc, "lsopen")).map((e) => [e.action, e.outcome]),
        [
          ["create", "ok"],
          ["listen", "warning"],
          ["start", "ok"],
        ],
      );
      const warning = (await events(acc, "lsopen")).find((e) => e.action === "listen");
      assert.match(
        warning?.message ?? "",
        new RegExp(`listens on ${where}, beyond 127\\.0\\.0\\.1`),
      );
      assert.match(
        await acc.ok(["show", "lsopen"]),
        new RegExp(`^warning +listens on ${where}, beyond 127\\.0\\.0\\.1`, "m"),
      );
      assert.equal((await acc.request("lsopen.localhost")).status, 200, "it still serves");
    });

    await t.test("strict_bind and ::: the start fails, the instance is stopped", async () => {
      const created = await acc.run([
        "create",
        "listen-strict",
        "--name",
        "lsstrict",
        "--param",
        "address=::",
      ]);
      assert.equal(created.code, 1, created.stderr);
      const view = await show(acc, "lsstrict");
      const where = `[::]:${view.port}`;
      assert.match(
        created.stderr,
        new RegExp(
          `lsstrict failed to start: it listens on \\[::\\]:${view.port}, beyond 127\\.0\\.0\\.1 .*strict_bind = true`,
        ),
      );
      assert.equal(view.state, "failed");
      assert.equal(view.exposed_listeners, null, "not running: not looked at");
      assert.match(view.last_error ?? "", /strict_bind = true/);
      assert.equal(await instanceListens("lsstrict", view.port), false, "its process was stopped");
      const list = await events(acc, "lsstrict");
      assert.deepEqual(
        list.map((e) => [e.action, e.outcome]),
        [
          ["create", "ok"],
          ["listen", "failed"],
          ["start", "failed"],
        ],
      );
      for (const event of list.slice(1)) {
        assert.ok(event.message?.includes(where), event.message ?? "");
        assert.match(event.message ?? "", /strict_bind = true/);
      }
      // A strict model that binds loopback starts as usual.
      await acc.ok([
        "create",
        "listen-strict",
        "--name",
        "lsstrictok",
        "--param",
        "address=127.0.0.1",
      ]);
      assert.equal((await show(acc, "lsstrictok")).state, "running");
    });

    await t.test("127.0.0.1: no warning", async () => {
      await acc.ok(["create", "listen", "--name", "lslocal", "--param", "address=127.0.0.1"]);
      const view = await show(acc, "lslocal");
      assert.equal(view.state, "running");
      assert.deepEqual(view.exposed_listeners, []);
      assert.deepEqual(
        (await events(acc, "lslocal")).map((e) => e.action),
        ["create", "start"],
      );
      assert.doesNotMatch(await acc.ok(["show", "lslocal"]), /warning/);
    });

    await t.test("acc doctor names the running instances listening beyond loopback", async () => {
      const port = (await show(acc, "lsopen")).port;
      const doctor = await acc.run(["doctor"]);
      assert.equal(doctor.code, 1, doctor.stderr);
      // Only what is wrong: a note (a port still in TIME_WAIT after lsstrict's refused start) is not.
      const found = doctor.stdout
        .trim()
        .split("\n")
        .filter((line) => !line.startsWith("note: "));
      assert.deepEqual(found, [
        `found: lsopen: listens on 0.0.0.0:${port}, beyond 127.0.0.1: other hosts reach it without nginx -> make its app listen on $HOST (127.0.0.1) only, then acc restart lsopen`,
      ]);
      await acc.ok(["stop", "lsopen"]);
      assert.equal((await acc.run(["doctor"])).code, 0, "a stopped instance listens nowhere");
    });
  },
);
