// npm run quickstart: from a fresh Debian machine (as root) to a hello instance answering.
// Installs npm dependencies and missing Debian packages, inits a home, boots, creates a
// hello instance (once: a second run reuses it) and prints its URL.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const acc = path.join(root, "dist/acc.mjs");

function run(file, args, options = {}) {
  const result = spawnSync(file, args, {
    cwd: root,
    stdio: options.capture ? ["inherit", "pipe", "inherit"] : "inherit",
    encoding: "utf8",
  });
  if (result.status !== 0 && !options.allowFail) {
    console.error(`quickstart: ${[file, ...args].join(" ")} failed (exit ${result.status})`);
    process.exit(result.status ?? 1);
  }
  return result;
}

function portFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "0.0.0.0", () => server.close(() => resolve(true)));
  });
}

if (!existsSync(path.join(root, "node_modules"))) run("npm", ["ci", "--no-audit", "--no-fund"]);
run("npm", ["run", "build", "--silent"]);

const accArgs = (...args) => [acc, ...args];
const status = run(process.execPath, accArgs("status", "--json"), {
  capture: true,
  allowFail: true,
});
const booted = status.status === 0;
if (!booted) {
  // A first run: pick the HTTP port (80 as root unless something else holds it).
  const initArgs = ["init"];
  const isRoot = process.getuid?.() === 0;
  if (status.status === 3) {
    const preferred = isRoot ? 80 : 8080;
    const port = (await portFree(preferred)) ? preferred : (await portFree(8080)) ? 8080 : 8081;
    initArgs.push("--http-port", String(port));
  }
  run(process.execPath, accArgs(...initArgs));
  run(process.execPath, accArgs("boot"));
}

const list = JSON.parse(run(process.execPath, accArgs("list", "--json"), { capture: true }).stdout);
let hello = list.find((i) => i.model === "hello");
if (!hello) {
  hello = JSON.parse(
    run(process.execPath, accArgs("create", "hello", "--json"), { capture: true }).stdout,
  );
} else if (hello.state !== "running") {
  run(process.execPath, accArgs("start", hello.name));
}
// *.localhost is loopback for browsers and curl, not always for the system resolver: ask 127.0.0.1 with the Host header.
const url = new URL(hello.url);
const statusCode = await new Promise((resolve) => {
  const req = http.get(
    {
      host: "127.0.0.1",
      port: url.port || 80,
      path: "/",
      headers: { host: url.host },
      timeout: 30_000,
    },
    (res) => {
      res.resume();
      resolve(res.statusCode);
    },
  );
  req.on("timeout", () => req.destroy());
  req.on("error", (error) => resolve(`error: ${error.message}`));
});
console.log(`\n${hello.name} answers at ${hello.url} (HTTP ${statusCode})`);
console.log(`try: curl ${hello.url}   or: node ${acc} list`);
if (statusCode !== 200) process.exit(1);
