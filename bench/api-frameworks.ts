// bench/api-frameworks: the HTTP layer's own cost, to choose the API's framework by measurement
// (issue 9). Over a Unix socket (the API's local transport), for bare node:http, Fastify 5 with
// JSON schemas on the routes (the response schema makes it serialise with fast-json-stringify),
// Fastify with the same schemas but JSON.stringify as serializer, Fastify without schemas,
// and Hono on @hono/node-server when it is installed. Two routes: GET /small (a tiny object) and GET /list (10,000
// instance-like objects serialised on every request, like `GET /api/v1/instances` on a full
// server). Each server runs in its own forked process (no shared heap, no shared JIT state);
// the client is this process: a keep-alive http.Agent on the socket, concurrency 1 and 16.
// Also the cost of loading each framework in a fresh process (import, then import + routes +
// listening), median of 5.
// Usage: node dist/bench/api-frameworks.js [--requests 10000] [--list-requests 30]
//        [--warmup 1000] [--list-warmup 10] [--rounds 1]
//        [--only node,fastify,fastify-json,fastify-noschema,hono]
import { fork, type ChildProcess } from "node:child_process";
import { deepStrictEqual } from "node:assert";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { makeTempDir, removeDir } from "../test/harness/common.js";
import {
  argString,
  argValue,
  dropNodeEnv,
  machineNote,
  median,
  percentile,
  procStatusKb,
} from "./stats.js";

type FrameworkId = "node" | "fastify" | "fastify-json" | "fastify-noschema" | "hono";
const FRAMEWORKS: FrameworkId[] = ["node", "fastify", "fastify-json", "fastify-noschema", "hono"];
const isFastify = (id: string) => id.startsWith("fastify");
const LIST_SIZE = 10_000;
const SMALL = { ok: true, name: "x" };

/** The instance rows of GET /list: the fields `acc list --json` shows, with realistic values. */
function instanceRows(): Record<string, unknown>[] {
  const at = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
  return Array.from({ length: LIST_SIZE }, (_, i) => ({
    name: `app-${i}`,
    model: i % 3 === 0 ? "hello" : "guestbook",
    model_version: "1.4.2",
    state: i % 10 === 0 ? "running" : "stopped",
    url: `https://app-${i}.example.org/`,
    hosts: [`app-${i}.example.org`, `www.app-${i}.example.org`],
    port: 20_000 + i,
    params: { greeting: "Hello", locale: "fr_FR" },
    idle_timeout: i % 2 === 0 ? 900 : null,
    created_at: at(i),
    updated_at: at(i + 1),
    state_changed_at: at(i + 2),
    last_activity_at: i % 4 === 0 ? null : at(i + 3),
    last_error: i % 50 === 0 ? "exited with status 1 during start" : null,
    memory_mb: i % 10 === 0 ? 48.5 : null,
  }));
}

const INSTANCE_SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string" },
    model: { type: "string" },
    model_version: { type: "string" },
    state: { type: "string" },
    url: { type: "string" },
    hosts: { type: "array", items: { type: "string" } },
    port: { type: "integer" },
    params: { type: "object", additionalProperties: { type: "string" } },
    idle_timeout: { type: ["integer", "null"] },
    created_at: { type: "string" },
    updated_at: { type: "string" },
    state_changed_at: { type: "string" },
    last_activity_at: { type: ["string", "null"] },
    last_error: { type: ["string", "null"] },
    memory_mb: { type: ["number", "null"] },
  },
  required: ["name", "model", "model_version", "state", "hosts", "port", "params"],
} as const;

const SMALL_SCHEMA = {
  type: "object",
  properties: { ok: { type: "boolean" }, name: { type: "string" } },
  required: ["ok", "name"],
} as const;

/** What @hono/node-server and hono export that this bench uses (they are not dependencies). */
interface HonoModules {
  Hono: new () => {
    get(path: string, handler: (c: { json(value: unknown): unknown }) => unknown): void;
    fetch: unknown;
  };
  createAdaptorServer(options: { fetch: unknown; overrideGlobalObjects?: boolean }): http.Server;
}

async function loadHono(): Promise<HonoModules | undefined> {
  // Names in variables: tsc must not resolve packages that are not installed.
  const honoName = "hono";
  const serverName = "@hono/node-server";
  try {
    const hono = (await import(honoName)) as Pick<HonoModules, "Hono">;
    const server = (await import(serverName)) as Pick<HonoModules, "createAdaptorServer">;
    return { Hono: hono.Hono, createAdaptorServer: server.createAdaptorServer };
  } catch {
    return undefined;
  }
}

async function honoInstalled(): Promise<boolean> {
  return (await loadHono()) !== undefined;
}

/** Builds one framework's server with both routes; it is not listening yet. */
async function buildServer(
  id: FrameworkId,
  rows: Record<string, unknown>[],
): Promise<{ listen(socket: string): Promise<void> }> {
  const listenNode = (server: http.Server) => (socket: string) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socket, resolve);
    });
  if (id === "node") {
    const server = http.createServer((req, res) => {
      const body =
        req.url === "/small"
          ? JSON.stringify(SMALL)
          : req.url === "/list"
            ? JSON.stringify(rows)
            : undefined;
      if (body === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, {
        "content-type": "application/json; charset=utf-8",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    });
    server.keepAliveTimeout = 60_000;
    return { listen: listenNode(server) };
  }
  if (isFastify(id)) {
    const { default: Fastify } = await import("fastify");
    const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
    const withSchema = id !== "fastify-noschema";
    // fastify-json: the same schemas (validation, OpenAPI) but JSON.stringify as serializer,
    // to separate fast-json-stringify's cost from the rest of Fastify's.
    if (id === "fastify-json") app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    app.get(
      "/small",
      withSchema ? { schema: { response: { 200: SMALL_SCHEMA } } } : {},
      () => SMALL,
    );
    app.get(
      "/list",
      withSchema
        ? { schema: { response: { 200: { type: "array", items: INSTANCE_SCHEMA } } } }
        : {},
      () => rows,
    );
    return {
      listen: async (socket) => {
        await app.listen({ path: socket });
      },
    };
  }
  const hono = await loadHono();
  if (!hono) throw new Error("hono is not installed");
  const app = new hono.Hono();
  app.get("/small", (c) => c.json(SMALL));
  app.get("/list", (c) => c.json(rows));
  // overrideGlobalObjects: false keeps the global Request/Response (see api-style.md).
  const server = hono.createAdaptorServer({ fetch: app.fetch, overrideGlobalObjects: false });
  server.keepAliveTimeout = 60_000;
  return { listen: listenNode(server) };
}

/** Child mode: `--serve ID --socket PATH` serves until killed; `--startup ID` prints its times. */
async function child(): Promise<boolean> {
  const serve = argString("serve", "");
  const startup = argString("startup", "");
  if (serve !== "") {
    const server = await buildServer(serve as FrameworkId, instanceRows());
    await server.listen(argString("socket", ""));
    process.send?.({ ready: true });
    return true;
  }
  if (startup !== "") {
    // The rows are built first so that only the framework's load and set-up are timed.
    const rows = instanceRows();
    const socket = argString("socket", "");
    const t0 = performance.now();
    const name = isFastify(startup) ? "fastify" : startup;
    if (name === "fastify") await import("fastify");
    if (name === "hono") await loadHono();
    const t1 = performance.now();
    const server = await buildServer(startup as FrameworkId, rows);
    await server.listen(socket);
    const t2 = performance.now();
    process.stdout.write(JSON.stringify({ importMs: t1 - t0, readyMs: t2 - t0 }) + "\n");
    process.exit(0);
  }
  return false;
}

const childEnv = { ...process.env };
dropNodeEnv(childEnv);
const self = fileURLToPath(import.meta.url);

function startServer(id: FrameworkId, socket: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const proc = fork(self, ["--serve", id, "--socket", socket], {
      env: childEnv,
      stdio: "inherit",
    });
    proc.once("message", () => resolve(proc));
    proc.once("error", reject);
    proc.once("exit", (code) => reject(new Error(`${id} server exited with ${code}`)));
  });
}

function stopServer(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.removeAllListeners("exit");
    proc.once("exit", () => resolve());
    proc.kill("SIGTERM");
  });
}

function get(agent: http.Agent, socket: string, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path, agent, method: "GET" }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${path}: status ${res.statusCode}`));
        else resolve(Buffer.concat(chunks));
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

interface CaseResult {
  rps: number;
  p50: number;
  p99: number;
}

/** `count` requests by `concurrency` loops, each waiting for its answer before the next. */
async function load(
  socket: string,
  path: string,
  concurrency: number,
  count: number,
): Promise<{ elapsed: number; times: number[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const times: number[] = [];
  let left = count;
  const started = performance.now();
  const loop = async () => {
    while (left > 0) {
      left--;
      const t = performance.now();
      await get(agent, socket, path);
      times.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = performance.now() - started;
  agent.destroy();
  return { elapsed, times };
}

async function runCase(
  socket: string,
  path: string,
  concurrency: number,
  warmup: number,
  count: number,
): Promise<CaseResult> {
  await load(socket, path, concurrency, warmup);
  const { elapsed, times } = await load(socket, path, concurrency, count);
  return {
    rps: (count / elapsed) * 1000,
    p50: median(times),
    p99: percentile(times, 99),
  };
}

async function startupTimes(
  id: FrameworkId,
  dir: string,
): Promise<{ importMs: number; readyMs: number }> {
  const imports: number[] = [];
  const readies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const socket = `${dir}/startup-${id}-${i}.sock`;
    const out = await new Promise<string>((resolve, reject) => {
      const proc = fork(self, ["--startup", id, "--socket", socket], {
        env: childEnv,
        stdio: ["ignore", "pipe", "inherit", "ipc"],
      });
      let text = "";
      proc.stdout?.on("data", (c: Buffer) => (text += c.toString("utf8")));
      proc.once("exit", (code) =>
        code === 0 ? resolve(text) : reject(new Error(`startup ${id} exited with ${code}`)),
      );
    });
    const times = JSON.parse(out) as { importMs: number; readyMs: number };
    imports.push(times.importMs);
    readies.push(times.readyMs);
  }
  return { importMs: median(imports), readyMs: median(readies) };
}

const f1 = (v: number) => v.toFixed(1);
const f2 = (v: number) => v.toFixed(2);

async function main(): Promise<void> {
  const requests = argValue("requests", 10_000);
  const listRequests = argValue("list-requests", 30);
  const warmup = argValue("warmup", 1_000);
  const listWarmup = argValue("list-warmup", 10);
  const rounds = argValue("rounds", 1);
  const only = argString("only", FRAMEWORKS.join(",")).split(",") as FrameworkId[];
  const hasHono = await honoInstalled();
  const ids = FRAMEWORKS.filter((id) => only.includes(id) && (id !== "hono" || hasHono));
  console.log(`api-frameworks: ${machineNote()}, node ${process.version}`);
  console.log(
    `/small ${requests} requests (warm-up ${warmup}), /list ${listRequests} requests ` +
      `(warm-up ${listWarmup}) of ${LIST_SIZE} rows, per case; ${rounds} round(s), median shown`,
  );
  if (!hasHono) console.log("hono: not installed");

  const dir = await makeTempDir("acc-fwb-");
  const servers = new Map<FrameworkId, { proc: ChildProcess; socket: string }>();
  const results = new Map<string, CaseResult[]>();
  try {
    // All servers up at once (idle ones cost no CPU), then each case runs on every framework in
    // turn, in a rotated order per round: the machine's drift spreads over all of them.
    let reference: unknown;
    for (const id of ids) {
      const socket = `${dir}/${id}.sock`;
      servers.set(id, { proc: await startServer(id, socket), socket });
      // Every server must send the same data, or the comparison is void.
      const agent = new http.Agent({ keepAlive: false });
      const list = JSON.parse((await get(agent, socket, "/list")).toString("utf8")) as unknown;
      deepStrictEqual(JSON.parse((await get(agent, socket, "/small")).toString("utf8")), SMALL);
      if (reference === undefined) reference = list;
      else deepStrictEqual(list, reference, `${id} sends a different /list`);
    }
    const cases = [
      ["/small", 1, warmup, requests],
      ["/small", 16, warmup, requests],
      ["/list", 1, listWarmup, listRequests],
      ["/list", 16, listWarmup, listRequests],
    ] as const;
    for (let round = 0; round < rounds; round++) {
      for (const [route, concurrency, warm, count] of cases) {
        for (let k = 0; k < ids.length; k++) {
          const id = ids[(k + round) % ids.length] as FrameworkId;
          const { socket } = servers.get(id) ?? { socket: "" };
          const r = await runCase(socket, route, concurrency, warm, count);
          const key = `${id} ${route} ${concurrency}`;
          results.set(key, [...(results.get(key) ?? []), r]);
        }
      }
    }
    const summary = (key: string): CaseResult | undefined => {
      const rs = results.get(key);
      if (!rs) return undefined;
      return {
        rps: median(rs.map((r) => r.rps)),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
      };
    };

    console.log("\nframework         route   conc     req/s   p50 ms   p99 ms");
    for (const id of ids) {
      for (const [route, concurrency] of cases) {
        const r = summary(`${id} ${route} ${concurrency}`);
        if (!r) continue;
        console.log(
          `${id.padEnd(17)} ${route.padEnd(7)} ${String(concurrency).padStart(4)} ` +
            `${f1(r.rps).padStart(9)} ${f2(r.p50).padStart(8)} ${f2(r.p99).padStart(8)}`,
        );
      }
    }

    console.log("\nratios to node:http (req/s; p50 latency)");
    for (const id of ids.filter((i) => i !== "node")) {
      for (const [route, concurrency] of cases) {
        const base = summary(`node ${route} ${concurrency}`);
        const r = summary(`${id} ${route} ${concurrency}`);
        if (!base || !r) continue;
        console.log(
          `${`${id}/node`.padEnd(22)} ${route.padEnd(7)} c${String(concurrency).padEnd(3)} ` +
            `req/s x${f2(r.rps / base.rps)}, p50 x${f2(r.p50 / base.p50)}`,
        );
      }
    }

    console.log("\nserver peak RSS (VmHWM, after all cases)");
    for (const [id, { proc }] of servers) {
      const kb = await procStatusKb(proc.pid ?? 0, "VmHWM");
      console.log(`${id.padEnd(17)} ${(kb / 1024).toFixed(0)} MB`);
    }
    for (const { proc } of servers.values()) await stopServer(proc);

    console.log("\nstart-up in a fresh process, median of 5 (import; import + routes + listening)");
    for (const id of ids) {
      const t = await startupTimes(id, dir);
      console.log(`${id.padEnd(17)} import ${f1(t.importMs)} ms, ready ${f1(t.readyMs)} ms`);
    }
  } finally {
    for (const { proc } of servers.values()) await stopServer(proc);
    await removeDir(dir);
  }
}

if (!(await child())) await main();
