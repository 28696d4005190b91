// acc's demo app: no dependencies, so an instance boots in well under a second.
// Environment (set by acc): PORT, HOST, ACC_INSTANCE, DATA_DIR; GREETING from model.toml;
// HELLO_BOOT_DELAY_MS delays listening, to stand in for a slow app in tests.
import { createServer } from "node:http";
import { open, readFile, rename } from "node:fs/promises";
import path from "node:path";

const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT);
const instance = process.env.ACC_INSTANCE || "hello";
const greeting = process.env.GREETING || "Hello";
const dataDir = process.env.DATA_DIR || ".";
const bootDelay = Number(process.env.HELLO_BOOT_DELAY_MS || "0");
const counterFile = path.join(dataDir, "counter.json");

if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`hello: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}
if (!Number.isInteger(bootDelay) || bootDelay < 0) {
  console.error("hello: HELLO_BOOT_DELAY_MS must be a whole number of milliseconds");
  process.exit(2);
}

async function readCounter() {
  try {
    const { visits } = JSON.parse(await readFile(counterFile, "utf8"));
    if (!Number.isInteger(visits) || visits < 0)
      throw new Error(`bad visit count in ${counterFile}`);
    return visits;
  } catch (error) {
    if (error.code === "ENOENT") return 0;
    throw error;
  }
}

let visits = await readCounter();
let saving = Promise.resolve();
let tempSeq = 0;

// Temp file + fsync + rename: a crash or SIGKILL leaves the old count or the new one, never half a file.
async function writeCounter(value) {
  const temp = `${counterFile}.${process.pid}.${tempSeq++}.tmp`;
  const handle = await open(temp, "w", 0o600);
  try {
    await handle.writeFile(`${JSON.stringify({ visits: value })}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, counterFile);
}

// Writes run one after another, so an older count can never land after a newer one.
function saveCounter() {
  const value = visits;
  const next = saving.then(() => writeCounter(value));
  // The caller reports a failed write; the chain itself goes on, so the next visit tries again.
  saving = next.catch(() => undefined);
  return next;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(count) {
  const name = escapeHtml(instance);
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${name}</title></head>
<body>
<h1>${escapeHtml(greeting)} from ${name}</h1>
<p>This page has been visited ${count} time${count === 1 ? "" : "s"}.</p>
</body>
</html>
`;
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  // The health check is acc's, not a visitor's: it must not count.
  if (url.pathname === "/healthz") {
    res.writeHead(200, {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
    });
    res.end("ok");
    return;
  }
  if (url.pathname !== "/" || (req.method !== "GET" && req.method !== "HEAD")) {
    res.writeHead(url.pathname === "/" ? 405 : 404, {
      "content-type": "text/plain; charset=utf-8",
    });
    res.end(url.pathname === "/" ? "method not allowed\n" : "not found\n");
    return;
  }
  if (req.method === "HEAD") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end();
    return;
  }
  visits += 1;
  const count = visits;
  saveCounter().then(
    () => {
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
      });
      res.end(page(count));
    },
    (error) => {
      console.error(`hello: cannot save the counter: ${error.message}`);
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("cannot save the visit counter\n");
    },
  );
});

function shutdown(signal) {
  console.log(`hello: ${signal}, closing`);
  server.close(() => {
    void saving.then(() => process.exit(0));
  });
  // Idle keep-alive connections would hold close() open until they time out.
  server.closeIdleConnections();
}
process.once("SIGTERM", () => shutdown("SIGTERM"));
process.once("SIGINT", () => shutdown("SIGINT"));

// Socket activation (model.toml: socket_activation = true): acc hands the listening socket over
// on fd 3, as systemd does, so the port is never free for another program to take.
const activated =
  process.env.LISTEN_FDS === "1" &&
  (process.env.LISTEN_PID === undefined || Number(process.env.LISTEN_PID) === process.pid);

setTimeout(() => {
  const where = activated ? { fd: 3 } : { port, host };
  server.listen(where, () =>
    console.log(
      `hello: ${instance} listening on http://${host}:${port}/${activated ? " (socket from acc)" : ""}`,
    ),
  );
}, bootDelay);
