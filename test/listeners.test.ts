// The /proc side of services/listeners.ts against real processes this test starts (and stops,
// by pid): who holds a port, and which listeners belong to a process tree.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { test, type TestContext } from "node:test";
import { exposedListeners } from "../src/services/bind-check.js";
import type { AccContext } from "../src/services/context.js";
import {
  describePortHolders,
  portHolders,
  readListeners,
  socketOwners,
} from "../src/services/listeners.js";
import { isAlive, waitFor } from "./harness/common.js";
import { processTrees } from "../src/lib/processes.js";

const NOBODY = 65534;

/**
 * A node process running `script`, stopped by pid (and its process group) when the test ends;
 * resolves with the first line it prints.
 */
async function startNode(
  t: TestContext,
  script: string,
  options: { uid?: number; gid?: number } = {},
): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, ["-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
    ...options,
  });
  const pid = child.pid;
  assert.ok(pid !== undefined, "spawned");
  t.after(async () => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
    await waitFor(`pid ${pid} to exit`, () => (isAlive(pid) ? undefined : true), 5_000).catch(
      () => undefined,
    );
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await Promise.race([
    once(lines, "line"),
    once(child, "exit").then(([code]) => {
      throw new Error(`node -e exited with ${String(code)} before printing`);
    }),
  ])) as [string];
  lines.close();
  return { child, line };
}

const LISTEN_SCRIPT = `
const net = require("node:net");
const server = net.createServer();
server.listen(0, process.argv[1] ?? "127.0.0.1", () => console.log(server.address().port));
`;

test("portHolders names the uid, user, pid and command of a listener", async (t) => {
  const asRoot = process.getuid?.() === 0;
  const { child, line } = await startNode(
    t,
    `process.title = "ls-holder\\nfake"; ${LISTEN_SCRIPT}`,
    asRoot ? { uid: NOBODY, gid: NOBODY } : {},
  );
  const port = Number(line);
  const holders = await portHolders(port);
  assert.equal(holders.length, 1);
  const [holder] = holders;
  assert.equal(holder?.address, "127.0.0.1");
  assert.equal(holder?.port, port);
  const uid = asRoot ? NOBODY : (process.getuid?.() ?? -1);
  assert.equal(holder?.uid, uid);
  assert.deepEqual(
    holder?.owners.map((o) => [o.pid, o.uid]),
    [[child.pid, uid]],
  );
  // The command line is shown escaped: a newline in process.title becomes "\n".
  const description = describePortHolders(port, holders);
  assert.match(
    description,
    new RegExp(
      `^port ${port} is held by uid ${uid} \\(.+\\), pid ${child.pid} \\(ls-holder\\\\nfake`,
    ),
  );
  assert.doesNotMatch(description, /\n/);

  child.kill("SIGKILL");
  await once(child, "exit");
  assert.deepEqual(await portHolders(port), [], "gone with its process");
});

test("socketOwners: several processes may hold one socket; gone pids are skipped", async (t) => {
  // The parent listens, then forks a child that inherits the listening socket.
  const { child, line } = await startNode(
    t,
    `
const net = require("node:net");
const { spawn } = require("node:child_process");
const server = net.createServer();
server.listen(0, "127.0.0.1", () => {
  const kid = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], {
    stdio: ["ignore", "ignore", "ignore", server._handle.fd],
  });
  console.log(server.address().port + " " + kid.pid);
});
`,
  );
  const [port, kidPid] = line.split(" ").map(Number);
  const listener = (await readListeners()).find((l) => l.port === port);
  assert.ok(listener, "listed in /proc/net/tcp");
  const owners = await socketOwners([listener.inode], {
    pids: [child.pid ?? 0, kidPid ?? 0, 999_999_999],
  });
  assert.deepEqual(
    owners.map((o) => o.pid).sort((a, b) => a - b),
    [child.pid, kidPid].sort((a, b) => (a ?? 0) - (b ?? 0)),
  );
  assert.deepEqual(await socketOwners([]), []);
});

test("processTrees and exposedListeners (by process tree): a grandchild on 0.0.0.0", async (t) => {
  // parent -> child (listens on 127.0.0.1) -> grandchild (listens on 0.0.0.0 and on ::)
  const grandchild = `
const net = require("node:net");
const a = net.createServer().listen(0, "0.0.0.0", () => {
  const b = net.createServer().listen(0, "::", () => console.log(a.address().port + " " + b.address().port + " " + process.pid));
});
`;
  const middle = `
const net = require("node:net");
const { spawn } = require("node:child_process");
const local = net.createServer().listen(0, "127.0.0.1", () => {
  const kid = spawn(process.execPath, ["-e", ${JSON.stringify(grandchild)}], { stdio: ["ignore", "pipe", "inherit"] });
  kid.stdout.on("data", (d) => process.stdout.write(local.address().port + " " + process.pid + " " + d));
});
`;
  const { child, line } = await startNode(
    t,
    `
const { spawn } = require("node:child_process");
const kid = spawn(process.execPath, ["-e", ${JSON.stringify(middle)}], { stdio: ["ignore", "pipe", "inherit"] });
kid.stdout.on("data", (d) => process.stdout.write(d));
`,
  );
  const [localPort, middlePid, anyV4Port, anyV6Port, grandchildPid] = line.split(" ").map(Number);
  const root = child.pid ?? 0;
  const trees = await processTrees([root]);
  assert.deepEqual(
    new Set(trees.get(root)),
    new Set([root, middlePid, grandchildPid]),
    "the root, its child and its grandchild",
  );

  const ctx = {
    isRoot: false,
    processes: {
      programState: (name: string) =>
        Promise.resolve(
          name === "lstree"
            ? { state: "RUNNING", pid: root, exitStatus: 0, description: "", spawnError: "" }
            : null,
        ),
    },
  } as unknown as AccContext;
  const exposed = await exposedListeners(ctx, [{ name: "lstree" }]);
  assert.deepEqual(
    exposed
      .get("lstree")
      ?.map((s) => `${s.address} ${s.port}`)
      .sort(),
    [`0.0.0.0 ${anyV4Port}`, `:: ${anyV6Port}`].sort(),
    `127.0.0.1:${localPort} is not listed`,
  );
  assert.equal((await exposedListeners(ctx, [{ name: "lsother" }])).size, 0);
});
