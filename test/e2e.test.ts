import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { test } from "node:test";
import { pathExists } from "../src/lib/files.js";
import { isAlive, waitFor } from "./harness/common.js";
import { createAccHome } from "./harness/acc.js";

interface InstanceView {
  name: string;
  state: string;
  url: string;
  port: number;
  hosts: string[];
}

test(
  "end to end: init, boot, create hello, stop, start, destroy, shutdown",
  { timeout: 180_000 },
  async (t) => {
    const acc = await createAccHome();
    t.after(() => acc.cleanup());
    const name = `e2e${process.pid}`;
    const host = `${name}.localhost`;

    await acc.ok(["boot"]);
    assert.match(await acc.ok(["boot"]), /already running/, "boot is idempotent");
    const supervisordPid = Number(
      (await readFile(path.join(acc.home, "run/supervisord.pid"), "utf8")).trim(),
    );
    const nginxPid = Number((await readFile(path.join(acc.home, "run/nginx.pid"), "utf8")).trim());

    const created = JSON.parse(
      await acc.ok(["create", "hello", "--name", name, "--json"]),
    ) as InstanceView;
    assert.equal(created.name, name);
    assert.equal(created.state, "running");
    assert.equal(created.url, `http://${host}:${acc.httpPort}/`);
    assert.ok(created.hosts.includes(host));

    const first = await acc.request(host);
    assert.equal(first.status, 200);
    assert.match(first.body, new RegExp(name));
    assert.match(first.body, /visit(s|or)?\D*1\b/i);

    const unknown = await acc.request("nobody.localhost");
    assert.equal(unknown.status, 404, "unknown host gets the default server's 404");

    const listed = JSON.parse(await acc.ok(["list", "--json"])) as InstanceView[];
    assert.deepEqual(
      listed.map((i) => [i.name, i.state]),
      [[name, "running"]],
    );

    // Filters, sorts and paging of acc list (through acc server): each asked of the store.
    const names = async (...args: string[]) =>
      (JSON.parse(await acc.ok(["list", "--json", ...args])) as InstanceView[]).map((i) => i.name);
    assert.deepEqual(await names("--state", "running", "--model", "hello"), [name]);
    assert.deepEqual(await names("--state", "stopped"), []);
    assert.deepEqual(await names("--search", host.toUpperCase().slice(2)), [name]);
    assert.deepEqual(await names("--search", "%"), []);
    assert.deepEqual(await names("--sort", "activity", "--limit", "1"), [name]);
    assert.deepEqual(await names("--offset", "1"), []);
    const [byMemory] = JSON.parse(await acc.ok(["list", "--json", "--sort", "memory"])) as {
      memory_mb: number | null;
    }[];
    assert.ok((byMemory?.memory_mb ?? 0) > 0, "a running instance has a memory figure");
    assert.match(await acc.ok(["list", "--state", "failed"]), /^no instances match$/m);
    // The same through the API: bad values are a 400 naming them, nothing else.
    const api = (query: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http
          .get(
            { socketPath: path.join(acc.home, "run/api.sock"), path: `/api/v1/instances?${query}` },
            (res) => {
              let body = "";
              res.on("data", (chunk: Buffer) => (body += chunk.toString()));
              res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
            },
          )
          .on("error", reject);
      });
    const found = await api(`q=${name.toUpperCase()}&state=running&sort=memory&limit=5`);
    assert.deepEqual(
      (JSON.parse(found.body) as InstanceView[]).map((i) => i.name),
      [name],
    );
    for (const [query, value] of [
      ["state=asleep", '"asleep"'],
      ["sort=%3Cb%3E", '"<b>"'],
      ["model=..%2Fx", '"../x"'],
      [`q=${"x".repeat(300)}`, "(300 characters)"],
    ]) {
      const bad = await api(query ?? "");
      assert.equal(bad.status, 400, query);
      const error = (JSON.parse(bad.body) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, "ACC_INVALID");
      assert.ok(error.message.includes(value ?? ""), `${query}: ${error.message}`);
      assert.ok(!error.message.includes("\n"), "one line");
    }
    for (const [args, value] of [
      [["--state", "asleep"], "asleep"],
      [["--sort", "size"], "size"],
      [["--model", "Hello/.."], "Hello/.."],
      [["--limit", "ten"], "ten"],
    ] as const) {
      const bad = await acc.run(["list", ...args]);
      assert.equal(bad.code, 2, `acc list ${args.join(" ")}`);
      assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
      assert.ok(bad.stderr.includes(JSON.stringify(value)), bad.stderr);
    }

    await acc.ok(["stop", name]);
    const shown = JSON.parse(await acc.ok(["show", name, "--json"])) as InstanceView;
    assert.equal(shown.state, "stopped");
    // The first request to the stopped instance wakes it and is served by the app itself.
    const woken = await acc.request(host, { timeoutMs: 30_000 });
    assert.equal(woken.status, 200);
    assert.match(woken.body, /visit(s|or)?\D*2\b/i, "the counter was kept across stop and wake");
    assert.equal(
      (JSON.parse(await acc.ok(["show", name, "--json"])) as InstanceView).state,
      "running",
    );

    await acc.ok(["stop", name]);
    await acc.ok(["start", name]);
    const again = await acc.request(host);
    assert.equal(again.status, 200);
    assert.match(again.body, /visit(s|or)?\D*3\b/i, "the counter was kept across stop and start");

    const logs = await acc.ok(["logs", name, "-n", "5"]);
    assert.ok(logs.length > 0, "the instance logged something");

    const running = JSON.parse(await acc.ok(["status", "--json"])) as {
      supervisord: string;
      nginx: string;
      exits: string;
      total: number;
    };
    assert.equal(running.supervisord, "running");
    assert.equal(running.nginx, "running");
    assert.equal(running.exits, "running", "the exit listener runs");
    assert.equal(running.total, 1);

    const destroyed = JSON.parse(await acc.ok(["destroy", name, "--yes", "--json"])) as {
      backup: string;
    };
    assert.ok(
      await pathExists(path.join(destroyed.backup, "manifest.json")),
      "a final backup is kept",
    );
    assert.equal(
      await pathExists(path.join(acc.home, "instances", name)),
      false,
      "instance folder removed",
    );
    assert.deepEqual(await readdir(path.join(acc.home, "nginx/sites")), [], "no vhost left");
    assert.deepEqual(await readdir(path.join(acc.home, "nginx/hosts")), [], "no host map left");
    assert.deepEqual(
      (await readdir(path.join(acc.home, "supervisor/programs"))).filter((f) =>
        f.endsWith(".conf"),
      ),
      [],
      "no program left",
    );
    assert.deepEqual(
      (await readdir(path.join(acc.home, "supervisor/conf.d"))).filter((f) => f.endsWith(".conf")),
      [],
      "no active program left",
    );
    assert.equal(
      (await acc.request(host)).status,
      404,
      "the destroyed instance's host is unknown now",
    );
    assert.deepEqual(JSON.parse(await acc.ok(["list", "--json"])), []);
    const events = await acc.run(["show", name]);
    assert.equal(events.code, 3, "show of a destroyed instance: not found");

    await acc.ok(["shutdown"]);
    await waitFor(
      "supervisord to exit",
      () => (isAlive(supervisordPid) ? undefined : true),
      15_000,
    );
    await waitFor("nginx to exit", () => (isAlive(nginxPid) ? undefined : true), 15_000);
    const after = JSON.parse((await acc.run(["status", "--json"])).stdout) as {
      supervisord: string;
      exits: string;
    };
    assert.equal(after.supervisord, "stopped");
    assert.equal(after.exits, "stopped");
  },
);
