// The nginx driver against a real nginx, started in the foreground by each test in its own home.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import {
  Agent,
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from "node:http";
import type { Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { homePaths, type HomePaths } from "../src/core/paths.js";
import {
  createNginx,
  type Mutex,
  type Nginx,
  type NginxEvent,
} from "../src/drivers/nginx/index.js";
import { fileSize, listAcceptingWorkers, waitSettled } from "../src/drivers/nginx/control.js";
import {
  hashKeyFor,
  hostMapPath,
  renderGeneration,
  sitePath,
} from "../src/drivers/nginx/render.js";
import { isAccError } from "../src/lib/errors.js";
import { listenOnSocket } from "../src/server/listen.js";
import { exec } from "../src/lib/exec.js";
import {
  freePort,
  isAlive,
  makeTempDir,
  removeDir,
  requireBinary,
  waitFor,
} from "./harness/common.js";

const NGINX_BIN = "/usr/sbin/nginx";
const skip = requireBinary(existsSync(NGINX_BIN), "nginx");
const isRoot = process.getuid?.() === 0;

/** An in-process stand-in for the store's cross-process lock: one holder per key, in order. */
function createLocalMutex(): Mutex {
  const tails = new Map<string, Promise<unknown>>();
  return {
    run<T>(key: string, fn: () => Promise<T>): Promise<T> {
      const result = (tails.get(key) ?? Promise.resolve()).then(() => fn());
      tails.set(
        key,
        result.catch(() => undefined),
      );
      return result;
    },
  };
}

/** As root the workers need an unprivileged user: acc's own when it exists, else nobody. */
async function pickWorkerUser(): Promise<{ name: string; uid: number }> {
  for (const name of ["acc_nginx", "nobody"]) {
    try {
      const { stdout } = await exec("id", ["-u", name], { timeoutMs: 5_000 });
      return { name, uid: Number(stdout.trim()) };
    } catch {
      // Not on this machine: try the next one.
    }
  }
  throw new Error("neither user acc_nginx nor nobody exists");
}

interface Fixture {
  paths: HomePaths;
  nginx: Nginx;
  httpPort: number;
  workerUid: number;
  events: NginxEvent[];
  /** Starts nginx in the foreground; the test's cleanup stops it by pid. */
  start: () => Promise<number>;
  cleanup: (fn: () => Promise<void>) => void;
}

async function setUp(t: TestContext): Promise<Fixture> {
  const home = await makeTempDir("acc-nginx-");
  const paths = homePaths(home);
  const cleanups: (() => Promise<void>)[] = [() => removeDir(home)];
  t.after(async () => {
    // Last registered first: servers and nginx stop before their folder goes.
    const errors: unknown[] = [];
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
  });
  const httpPort = await freePort();
  const user = await pickWorkerUser();
  const events: NginxEvent[] = [];
  const nginx = createNginx({
    paths,
    exec,
    // Backends listen on ports the OS picks (listen on 0): the ephemeral range.
    config: {
      listenAddress: "127.0.0.1",
      httpPort,
      adminHost: "acc.localhost",
      isRoot,
      nginxUser: user.name,
      instancePorts: { min: 32768, max: 60999 },
      requestTimeout: 300,
    },
    mutex: createLocalMutex(),
    nginxBin: NGINX_BIN,
    timeoutMs: 10_000,
    log: (event) => events.push(event),
  });
  await nginx.writeMainConfig();
  const fixture: Fixture = {
    paths,
    nginx,
    httpPort,
    workerUid: user.uid,
    events,
    start: () => startNginx(nginx, paths, fixture.cleanup),
    cleanup: (fn) => cleanups.push(fn),
  };
  return fixture;
}

/** Runs nginx as supervisord would, in its own process group so that nothing can be left behind. */
async function startNginx(
  nginx: Nginx,
  paths: HomePaths,
  cleanup: (fn: () => Promise<void>) => void,
): Promise<number> {
  const [file, ...args] = nginx.command();
  const child = spawn(file!, args, { detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let output = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stopping = false;
  let diedEarly = false;
  void exited.then(() => (diedEarly = !stopping));
  const pid = child.pid!;
  cleanup(async () => {
    stopping = true;
    const log = async (): Promise<string> =>
      `${output}${await readFile(`${paths.nginxLogs}/error.log`, "utf8").catch(() => "")}`;
    if (diedEarly) throw new Error(`nginx died during the test:\n${await log()}`);
    process.kill(pid, "SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 10_000))),
    ]);
    clearTimeout(timer);
    if (!stopped) {
      process.kill(-pid, "SIGKILL");
      await exited;
      throw new Error(`nginx did not stop within 10 s:\n${await log()}`);
    }
    // The master waits for its workers, so the group must be empty now.
    assert.equal(isAlive(-pid), false, "nginx workers outlived their master");
  });
  try {
    await nginx.waitRunning(10_000);
  } catch (error) {
    // Its error log and stderr in the test's report: a port taken meanwhile by another test
    // file (free ports are found before nginx binds them) reads differently from a slow start.
    const details = isAccError(error) ? (error.details ?? "") : "";
    throw new Error(`${String(error)}\nerror log: ${details}\nstderr: ${output}`, {
      cause: error,
    });
  }
  return pid;
}

interface Backend {
  port: number;
  name: string;
  connections: number;
  close: () => Promise<void>;
}

/** An instance stand-in: answers with what it received, echoes on an upgraded connection. */
async function startBackend(fx: Fixture, name: string): Promise<Backend> {
  const upgraded = new Set<Socket>();
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          backend: name,
          method: req.method,
          url: req.url,
          headers: req.headers,
          body,
        }),
      );
    });
  });
  server.on("upgrade", (_req: IncomingMessage, socket: Socket) => {
    upgraded.add(socket);
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    socket.on("data", (data) => socket.write(data));
  });
  let closed = false;
  const backend: Backend = {
    port: 0,
    name,
    connections: 0,
    // Once only: a test may stop its instance before the cleanup runs.
    close: async () => {
      if (closed) return;
      closed = true;
      for (const socket of upgraded) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on("connection", () => backend.connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  backend.port = typeof address === "object" && address ? address.port : 0;
  fx.cleanup(() => backend.close());
  return backend;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  ms: number;
}

function get(
  fx: Fixture,
  host: string,
  options: {
    path?: string;
    method?: string;
    headers?: OutgoingHttpHeaders;
    body?: string;
    agent?: Agent;
  } = {},
): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: fx.httpPort,
        path: options.path ?? "/",
        method: options.method ?? "GET",
        // As a browser sends it: with the port, which the instance sees in Host.
        headers: { host: `${host}:${fx.httpPort}`, ...options.headers },
        agent: options.agent ?? false,
        timeout: 5_000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            ms: Date.now() - started,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer from nginx within 5 s for ${host}`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

function backendOf(answer: Answer): { backend: string; url: string; headers: IncomingHttpHeaders } {
  assert.equal(answer.status, 200, answer.body);
  return JSON.parse(answer.body) as { backend: string; url: string; headers: IncomingHttpHeaders };
}

function reloads(fx: Fixture): number {
  return fx.events.filter((event) => event.action === "reload" && event.ok).length;
}

async function workerPids(masterPid: number): Promise<number[]> {
  const raw = await readFile(`/proc/${masterPid}/task/${masterPid}/children`, "utf8");
  return raw.split(/\s+/).filter(Boolean).map(Number);
}

test("routes a host to its instance, and unknown hosts to a 404 page", { skip }, async (t) => {
  const fx = await setUp(t);
  const foo = await startBackend(fx, "foo");
  // Not running yet: the change is only tested; nginx loads it when it starts.
  await fx.nginx.applySite({
    name: "foo",
    port: foo.port,
    hosts: ["foo.localhost", "www.foo.test"],
  });
  assert.equal(reloads(fx), 0);
  assert.equal(await fx.nginx.isRunning(), false);
  const master = await fx.start();
  assert.equal(await fx.nginx.isRunning(), true);

  const answer = await get(fx, "foo.localhost", {
    path: "/hello?x=1",
    headers: { "x-acc-instance": "bar", "x-forwarded-for": "192.0.2.1" },
  });
  const seen = backendOf(answer);
  assert.equal(seen.backend, "foo");
  assert.equal(seen.url, "/hello?x=1");
  assert.equal(seen.headers.host, `foo.localhost:${fx.httpPort}`);
  assert.equal(seen.headers["x-real-ip"], "127.0.0.1");
  // Replaced, not appended to: the app never takes a client's claim for its address.
  assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
  assert.equal(seen.headers["x-forwarded-proto"], "http");
  // A client cannot name an instance to acc: the header never passes.
  assert.equal(seen.headers["x-acc-instance"], undefined);

  assert.equal(backendOf(await get(fx, "WWW.Foo.Test.")).backend, "foo");

  const unknown = await get(fx, "nothing.localhost");
  assert.equal(unknown.status, 404);
  assert.match(String(unknown.headers["content-type"]), /^text\/html/);
  assert.match(unknown.body, /No site answers at this address/);

  // The idle clock's input: time, then instance.
  const line = await waitFor(
    "the access log line of foo",
    async () =>
      (await readFile(`${fx.paths.nginxLogs}/access.log`, "utf8"))
        .split("\n")
        .find((l) => /^\d+\.\d{3} foo 200 /.test(l)),
    5_000,
    100,
  );
  assert.match(line, /"GET \/hello\?x=1 HTTP\/1\.1"/);
  // An unknown host has no instance: "-", which names none (not a valid instance name).
  await waitFor(
    "the access log line of the unknown host",
    async () =>
      (await readFile(`${fx.paths.nginxLogs}/access.log`, "utf8"))
        .split("\n")
        .find((l) => /^\d+\.\d{3} - 404 /.test(l)),
    5_000,
    100,
  );
  assert.deepEqual(await fx.nginx.listSites(), ["foo"]);

  if (isRoot) {
    for (const pid of await workerPids(master)) {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      assert.match(status, new RegExp(`^Uid:\\s+${fx.workerUid}\\s`, "m"), "a worker runs as root");
    }
    assert.equal((await stat(`${fx.paths.nginxTemp}/client_body`)).uid, fx.workerUid);
  }
});

test(
  "keeps connections alive to the client and to the instance, and passes websockets",
  { skip },
  async (t) => {
    const fx = await setUp(t);
    const foo = await startBackend(fx, "foo");
    await fx.nginx.applySite({ name: "foo", port: foo.port, hosts: ["foo.localhost"] });
    await fx.start();

    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    fx.cleanup(() => Promise.resolve(agent.destroy()));
    for (let i = 0; i < 5; i++) {
      assert.equal(backendOf(await get(fx, "foo.localhost", { agent })).backend, "foo");
    }
    // Its port's upstream block has a keepalive pool: the connection is reused.
    assert.equal(foo.connections, 1, "nginx reused its connection to the instance");

    const echoed = await new Promise<string>((resolve, reject) => {
      const req = request({
        host: "127.0.0.1",
        port: fx.httpPort,
        headers: { host: "foo.localhost", connection: "Upgrade", upgrade: "websocket" },
        agent: false,
        timeout: 5_000,
      });
      req.on("upgrade", (res: IncomingMessage, socket: Socket) => {
        assert.equal(res.statusCode, 101);
        socket.once("data", (data) => {
          socket.destroy();
          resolve(String(data));
        });
        socket.write("ping");
      });
      req.on("response", (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on("timeout", () => req.destroy(new Error("upgrade timed out")));
      req.on("error", reject);
      req.end();
    });
    assert.equal(echoed, "ping");
  },
);

test(
  "a stopped instance answers a 503 page at once while acc server is down",
  { skip },
  async (t) => {
    const fx = await setUp(t);
    const foo = await startBackend(fx, "foo");
    await fx.nginx.applySite({ name: "foo", port: foo.port, hosts: ["foo.localhost"] });
    await fx.start();
    assert.equal(backendOf(await get(fx, "foo.localhost")).backend, "foo");

    await foo.close();
    const answer = await get(fx, "foo.localhost");
    assert.equal(answer.status, 503);
    assert.match(String(answer.headers["content-type"]), /^text\/html/);
    assert.match(answer.body, /instance foo is not running/);
    assert.ok(answer.ms < 2_000, `the 503 page took ${answer.ms} ms`);
  },
);

test(
  "hands a stopped instance's request to acc server, which nginx tells the instance",
  { skip },
  async (t) => {
    const fx = await setUp(t);
    const port = await freePort();
    await fx.nginx.applySite({ name: "foo", port, hosts: ["foo.localhost"] });
    const received: {
      method?: string;
      url?: string;
      headers: IncomingHttpHeaders;
      body: string;
    }[] = [];
    const waker = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      req.on("end", () => {
        received.push({ method: req.method, url: req.url, headers: req.headers, body });
        res.end("woken");
      });
    });
    await listenOnSocket(waker, fx.paths.wakerSocket, 511);
    fx.cleanup(async () => {
      waker.closeAllConnections();
      await new Promise<void>((resolve) => waker.close(() => resolve()));
    });
    await fx.start();

    const answer = await get(fx, "foo.localhost", {
      method: "POST",
      path: "/form?a=1",
      headers: {
        "x-acc-instance": "bar",
        "x-acc-connect-time": "0.001",
        "content-type": "text/plain",
      },
      body: "name=value",
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "woken");
    assert.equal(received.length, 1);
    const [request_] = received;
    assert.equal(request_!.method, "POST");
    assert.equal(request_!.url, "/form?a=1");
    assert.equal(request_!.body, "name=value");
    assert.equal(request_!.headers["x-acc-instance"], "foo");
    // "-": the instance never accepted the connection, so the request never reached it.
    assert.equal(request_!.headers["x-acc-connect-time"], "-");
    assert.equal(request_!.headers.host, `foo.localhost:${fx.httpPort}`);
  },
);

test(
  "the admin host reaches acc server's admin socket, before any instance, with the client's own address",
  { skip },
  async (t) => {
    const fx = await setUp(t);
    const foo = await startBackend(fx, "foo");
    // An instance that holds the admin host (an older home): the admin server still wins.
    await fx.nginx.applySite({
      name: "foo",
      port: foo.port,
      hosts: ["foo.localhost", "acc.localhost"],
    });
    const received: { url?: string; headers: IncomingHttpHeaders; body: number }[] = [];
    const admin = createServer((req, res) => {
      let body = 0;
      req.on("data", (chunk: Buffer) => (body += chunk.length));
      req.on("end", () => {
        received.push({ url: req.url, headers: req.headers, body });
        if (req.url === "/events") {
          // A stream: the first event must reach the client while the answer is still open.
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.write("data: first\n\n");
          return;
        }
        res.end("admin");
      });
    });
    await listenOnSocket(admin, fx.paths.adminSocket, 511);
    fx.cleanup(async () => {
      admin.closeAllConnections();
      await new Promise<void>((resolve) => admin.close(() => resolve()));
    });
    await fx.start();

    const answer = await get(fx, "ACC.localhost.", {
      path: "/api/v1/instances?x=1",
      headers: {
        "x-real-ip": "192.0.2.1",
        "x-forwarded-for": "192.0.2.2",
        "x-acc-instance": "foo",
      },
    });
    assert.equal(answer.status, 200, answer.body);
    assert.equal(answer.body, "admin");
    const seen = received.at(-1)!;
    assert.equal(seen.url, "/api/v1/instances?x=1");
    assert.equal(seen.headers.host, "acc.localhost");
    assert.equal(seen.headers["x-real-ip"], "127.0.0.1");
    assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert.equal(seen.headers["x-forwarded-proto"], "http");
    assert.equal(seen.headers["x-acc-instance"], undefined);
    assert.equal(foo.connections, 0, "the admin host reached the instance");

    // Other hosts go to the instances as before.
    assert.equal(backendOf(await get(fx, "foo.localhost")).backend, "foo");
    assert.equal((await get(fx, "nothing.localhost")).status, 404);

    // Forms and JSON only: a large body is refused by nginx itself.
    const big = await get(fx, "acc.localhost", { method: "POST", body: "x".repeat(2 << 20) });
    assert.equal(big.status, 413);

    // Server-sent events are passed on as they come (no buffering).
    const first = await new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: fx.httpPort,
          path: "/events",
          headers: { host: "acc.localhost" },
          agent: false,
          timeout: 5_000,
        },
        (res) => {
          res.setEncoding("utf8").once("data", (chunk: string) => {
            req.destroy();
            resolve(chunk);
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("the first event did not come within 5 s")));
      req.on("error", reject);
      req.end();
    });
    assert.equal(first, "data: first\n\n");
  },
);

test(
  "a home of the layout before (hosts/NAME.map, one upstream): writeMainConfig makes sites/NAME.conf of it",
  { skip },
  async (t) => {
    const fx = await setUp(t);
    const foo = await startBackend(fx, "foo");
    // As the layout before wrote them: its hosts in hosts/NAME.map, its key in sites/NAME.conf
    // for one upstream of the whole range (32768-60999), and nginx.conf's map $host named them.
    const oldSite = `foo ${hashKeyFor("foo", foo.port - 32768, 60999 - 32768 + 1)};\n`;
    await writeFile(sitePath(fx.paths, "foo"), oldSite);
    await writeFile(hostMapPath(fx.paths, "foo"), "foo.localhost foo;\nwww.foo.test foo;\n");
    const conf = await readFile(fx.paths.nginxConf, "utf8");
    await writeFile(fx.paths.nginxConf, `${conf}# map $host $acc_instance {\n`);
    await fx.nginx.writeMainConfig();
    const site = await readFile(sitePath(fx.paths, "foo"), "utf8");
    assert.match(site, /^foo\.localhost (foo\.\d+\.\d+);\nwww\.foo\.test \1;\n$/);
    assert.equal(existsSync(hostMapPath(fx.paths, "foo")), false);
    await fx.start();
    assert.equal(backendOf(await get(fx, "foo.localhost")).backend, "foo");
    assert.equal(backendOf(await get(fx, "www.foo.test")).backend, "foo");
    // Once rewritten, the next boot leaves it as it is.
    await fx.nginx.writeMainConfig();
    assert.equal(await readFile(sitePath(fx.paths, "foo"), "utf8"), site);
  },
);

test("refuses a change nginx rejects, rolls it back, and keeps serving", { skip }, async (t) => {
  const fx = await setUp(t);
  const foo = await startBackend(fx, "foo");
  await fx.nginx.applySite({ name: "foo", port: foo.port, hosts: ["foo.localhost"] });
  const master = await fx.start();

  // The caller's own change is wrong: a host another instance has.
  await assert.rejects(
    fx.nginx.applySite({ name: "bar", port: foo.port, hosts: ["bar.localhost", "foo.localhost"] }),
    (error) =>
      isAccError(error, "ACC_NGINX") &&
      /^nginx rejected the configuration: conflicting parameter "foo\.localhost"/.test(
        error.message,
      ) &&
      error.hint === "the change to bar was rolled back",
  );
  assert.equal(existsSync(sitePath(fx.paths, "bar")), false);
  assert.equal(backendOf(await get(fx, "foo.localhost")).backend, "foo");
  assert.equal((await get(fx, "bar.localhost")).status, 404);

  // Something else broke the config: the caller's change is rolled back to what it was.
  const fooSite = await readFile(sitePath(fx.paths, "foo"), "utf8");
  const broken = `${fx.paths.nginxSites}/zzz.conf`;
  await writeFile(broken, "garbage\n");
  await assert.rejects(
    fx.nginx.applySite({ name: "foo", port: 40001, hosts: ["foo.localhost", "new.localhost"] }),
    (error) =>
      isAccError(error, "ACC_NGINX") &&
      /^nginx configuration is broken by something other than instance foo: .*zzz\.conf/.test(
        error.message,
      ) &&
      /acc doctor/.test(error.hint ?? ""),
  );
  assert.equal(await readFile(sitePath(fx.paths, "foo"), "utf8"), fooSite);
  await assert.rejects(fx.nginx.test(), /nginx rejected the configuration: .*zzz\.conf:2/);
  await assert.rejects(fx.nginx.reload(), /nginx rejected the configuration/);
  assert.equal(backendOf(await get(fx, "foo.localhost")).backend, "foo");
  assert.equal((await get(fx, "new.localhost")).status, 404);

  await writeFile(broken, "");
  await fx.nginx.applySite({
    name: "foo",
    port: foo.port,
    hosts: ["foo.localhost", "new.localhost"],
  });
  assert.equal(backendOf(await get(fx, "new.localhost")).backend, "foo");
  assert.equal(isAlive(master), true);
  assert.equal(await fx.nginx.isRunning(), true);
});

test("removeSite makes the host answer 404 and forgets the instance", { skip }, async (t) => {
  const fx = await setUp(t);
  const backend = await startBackend(fx, "shared");
  await fx.nginx.applySite({ name: "foo", port: backend.port, hosts: ["foo.localhost"] });
  await fx.nginx.applySite({ name: "bar", port: backend.port, hosts: ["bar.localhost"] });
  await fx.start();
  assert.equal((await get(fx, "foo.localhost")).status, 200);

  await fx.nginx.removeSite("foo");
  assert.equal((await get(fx, "foo.localhost")).status, 404);
  assert.equal((await get(fx, "bar.localhost")).status, 200);
  assert.deepEqual(await fx.nginx.listSites(), ["bar"]);
  assert.equal(existsSync(sitePath(fx.paths, "foo")), false);
  // Idempotent: a repeat after a crash is safe.
  await fx.nginx.removeSite("foo");
});

test("concurrent changes share tests and reloads (group commit)", { skip }, async (t) => {
  const fx = await setUp(t);
  const backend = await startBackend(fx, "shared");
  await fx.start();
  const names = Array.from({ length: 20 }, (_, i) => `site-${i + 1}`);
  await Promise.all(
    names.map((name) =>
      fx.nginx.applySite({ name, port: backend.port, hosts: [`${name}.localhost`] }),
    ),
  );
  const count = reloads(fx);
  t.diagnostic(`20 concurrent applies made ${count} reloads`);
  assert.ok(count >= 1 && count <= 4, `${count} reloads for 20 applies`);
  for (const name of names) {
    assert.equal((await get(fx, `${name}.localhost`)).status, 200, name);
  }
});

test(
  "writeMainConfig clears a stale control socket, so nginx can start after a crash",
  { skip },
  async (t) => {
    const fx = await setUp(t);
    // What a master killed with SIGKILL leaves: nginx would fail to bind it, five times, and exit.
    await writeFile(fx.paths.nginxControlSocket, "");
    await fx.nginx.writeMainConfig();
    assert.equal(existsSync(fx.paths.nginxControlSocket), false);
    await fx.start();
    assert.deepEqual(fx.nginx.command(), [
      NGINX_BIN,
      "-p",
      `${fx.paths.nginx}/`,
      "-c",
      fx.paths.nginxConf,
      "-e",
      `${fx.paths.nginxLogs}/error.log`,
      "-g",
      "daemon off;",
    ]);
    // Running: the same call must leave the live socket alone.
    await fx.nginx.writeMainConfig();
    assert.equal(existsSync(fx.paths.nginxControlSocket), true);
    await fx.nginx.reload();
    assert.equal(reloads(fx), 1);
  },
);

test(
  "a reload nginx refuses is reported at once, and nginx keeps its old configuration",
  { skip },
  async (t) => {
    const fx = await setUp(t);
    const foo = await startBackend(fx, "foo");
    await fx.nginx.applySite({ name: "foo", port: foo.port, hosts: ["foo.localhost"] });
    const master = await fx.start();
    // What a file written between `nginx -t` and SIGHUP does.
    const errorLog = `${fx.paths.nginxLogs}/error.log`;
    const offset = await fileSize(errorLog);
    const oldWorkers = await listAcceptingWorkers(master);
    await writeFile(`${fx.paths.nginxSites}/zzz.conf`, "garbage\n");
    await writeFile(fx.paths.nginxGeneration, renderGeneration("never"));
    process.kill(master, "SIGHUP");
    const started = Date.now();
    await assert.rejects(
      waitSettled({
        socketPath: fx.paths.nginxControlSocket,
        masterPid: master,
        generation: "never",
        oldWorkers,
        timeoutMs: 10_000,
        errorLog: { path: errorLog, offset },
      }),
      /^AccError: nginx refused to reload: unexpected end of file, expecting ";" or "}" in .*zzz\.conf:2$/,
    );
    assert.ok(Date.now() - started < 5_000, "the refusal was noticed only at the timeout");
    assert.equal(backendOf(await get(fx, "foo.localhost")).backend, "foo");
  },
);
