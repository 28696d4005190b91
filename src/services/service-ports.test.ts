import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { test } from "node:test";
import { accHomeOf, firstFreePort, portFree } from "./service-ports.js";

function listen(port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

const portOf = (server: Server): number => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
};

test("portFree tells a held port from a free one; firstFreePort skips held and avoided ones", async () => {
  const held = await listen();
  const port = portOf(held);
  try {
    assert.equal(await portFree(port, "127.0.0.1"), false);
    assert.equal(await portFree(port, "0.0.0.0"), false);
    const next = await firstFreePort(port, "127.0.0.1", { avoid: new Set([port + 1]) });
    assert.ok(next !== undefined && next !== port && next !== port + 1, String(next));
  } finally {
    await new Promise((resolve) => held.close(resolve));
  }
  assert.equal(await portFree(port, "127.0.0.1"), true);
});

test("accHomeOf names the acc home of a process from its command line or environment", async (t) => {
  const sleeper = (args: string[], env: NodeJS.ProcessEnv = {}): number => {
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)", ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: "ignore",
    });
    t.after(() => child.kill("SIGKILL"));
    if (child.pid === undefined) throw new Error("no child");
    return child.pid;
  };
  const server = sleeper(["/opt/acc/dist/acc.mjs", "--home", "/srv/acc-a", "server"]);
  const supervised = sleeper([], {
    SUPERVISOR_SERVER_URL: "unix:///srv/acc-b/run/supervisor.sock",
  });
  const other = sleeper(["--home", "/srv/acc-c"]);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(await accHomeOf(server), "/srv/acc-a");
  assert.equal(await accHomeOf(supervised), "/srv/acc-b");
  assert.equal(await accHomeOf(other), undefined, "not acc's: no acc.mjs, no supervisord socket");
});
