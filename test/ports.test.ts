// acc-ports, the port keeper (libexec/acc-ports), against the real script: it holds a port so that
// no other user can bind it while connections are refused, lets a socket-activated app listen
// beside it, lends it to an app that binds it itself, and acc names a program that got an
// instance's port anyway (a model that binds its port itself leaves a moment for it).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { createPortKeeper } from "../src/drivers/ports/index.js";
import { freePort, isAlive, makeTempDir, removeDir, waitFor } from "./harness/common.js";
import {
  accOk,
  bootHome,
  echoInstance,
  instanceView,
  requireRoot,
  runAcc,
  squat,
  userIdentity,
} from "./harness/attacker.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const KEEPER = path.resolve(here, "../../libexec/acc-ports");
const skip = requireRoot();

/** What a client sees when it connects: refused, reset after the connect, or a listener that talks. */
function connectOutcome(port: number): Promise<"refused" | "reset" | "open"> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.on("connect", () => {
      socket.write("GET / HTTP/1.0\r\n\r\n");
      socket.setTimeout(500, () => {
        socket.destroy();
        resolve("open");
      });
    });
    socket.on("data", () => {
      socket.destroy();
      resolve("open");
    });
    socket.on("error", (error: NodeJS.ErrnoException) =>
      resolve(error.code === "ECONNREFUSED" ? "refused" : "reset"),
    );
    socket.on("end", () => resolve("reset"));
  });
}

/** A listening socket on the port with SO_REUSEPORT, as acc-launch makes it (Node 20 cannot). */
async function listenBeside(port: number): Promise<{ close(done: () => void): void }> {
  const child = spawn(
    "/usr/bin/python3",
    [
      "-c",
      `import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); print("listening", flush=True)
sys.stdin.read()`,
      String(port),
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`python exited ${code}`)));
  });
  return {
    close(done) {
      child.once("exit", () => done());
      child.stdin.end();
    },
  };
}

function sleeper(): ChildProcess {
  const child = spawn("/bin/sleep", ["60"], { stdio: "ignore" });
  if (child.pid === undefined) throw new Error("could not start sleep");
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  const pid = child.pid as number;
  child.kill("SIGKILL");
  await waitFor(`pid ${pid} to exit`, () => (isAlive(pid) ? undefined : true), 5000);
}

test("acc-ports holds, hands over and takes back a port", { skip, timeout: 60_000 }, async (t) => {
  const dir = await makeTempDir("acc-ports-");
  t.after(() => removeDir(dir));
  const socketPath = path.join(dir, "ports.sock");
  const keeperProcess = spawn(
    "/usr/bin/python3",
    ["-I", "-S", KEEPER, socketPath, path.join(dir, "ports.state")],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  t.after(() => keeperProcess.kill("SIGTERM"));
  const keeper = createPortKeeper({ socketPath });
  await waitFor("acc-ports to answer", async () => (await keeper.status()).pid);
  const nobody = await userIdentity("nobody");
  const port = await freePort();
  const modeOf = async (): Promise<string | undefined> =>
    (await keeper.status()).ports.find((p) => p.port === port)?.mode;

  assert.equal(await keeper.hold(port), "held");
  assert.equal(await keeper.hold(port), "held", "again: nothing changes");
  assert.equal(await connectOutcome(port), "refused", "nginx then hands the request to the waker");
  const squatter = squat(nobody, port, "squatter", 300);
  assert.match((await squatter.waitOutput(/gave-up \S+/))[0], /EADDRINUSE/);
  await squatter.stop();

  // Socket activation: acc-launch (root) makes the app's socket with SO_REUSEPORT beside the
  // keeper's; it listens, and when it closes the port is refused again, never free.
  const app = await listenBeside(port);
  assert.equal(await connectOutcome(port), "open");
  const during = squat(nobody, port, "squatter", 300);
  assert.match((await during.waitOutput(/gave-up \S+/))[0], /EADDRINUSE/);
  await during.stop();
  await new Promise<void>((resolve) => app.close(() => resolve()));
  assert.equal(await connectOutcome(port), "refused");
  assert.equal(await modeOf(), "held");

  // An app that binds the port itself borrows it: free while it runs, held again after.
  const binder = sleeper();
  assert.equal(await lendAs(socketPath, port, binder.pid as number), "ok");
  assert.equal(await connectOutcome(port), "refused", "free for the app to bind");
  // Another program binds it meanwhile: the keeper cannot get it back, and says so.
  const thief = squat(nobody, port, "thief", 5000);
  await thief.waitOutput(/bound \d+/);
  await stopChild(binder);
  await waitFor("the keeper to find the port taken", async () =>
    (await modeOf()) === "squatted" ? true : undefined,
  );
  assert.equal(await keeper.hold(port), "in-use");
  await thief.stop();
  await waitFor(
    "the keeper to take the port back",
    async () => ((await modeOf()) === "held" ? true : undefined),
    5000,
  );

  await keeper.release(port);
  assert.equal(await modeOf(), undefined);
  assert.equal(await connectOutcome(port), "refused");

  // Only root (or the keeper's own user) may talk to it.
  const refused = await runAs(nobody.uid, nobody.gid, socketPath);
  assert.notEqual(refused, "ok", "nobody got an answer from acc-ports");
});

function request(socketPath: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(`${line}\n`));
    socket.on("data", (chunk: string) => (answer += chunk));
    socket.on("end", () => resolve(answer.trim()));
    socket.on("error", reject);
  });
}

const lendAs = (socketPath: string, port: number, pid: number): Promise<string> =>
  request(socketPath, `lend ${port} ${pid}`);

/** Asks for the keeper's status as another user: "ok" when it answered. */
function runAs(uid: number, gid: number, socketPath: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        "-e",
        `const s = require("node:net").connect(process.argv[1]);
         s.on("connect", () => s.write("status\\n"));
         s.on("data", (d) => { process.stdout.write(String(d).slice(0, 2)); s.destroy(); });
         s.on("error", (e) => process.stdout.write(e.code));`,
        socketPath,
      ],
      { uid, gid, stdio: ["ignore", "pipe", "ignore"] },
    );
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.on("exit", () => resolve(out || "nothing"));
  });
}

test(
  "a program that took the port of an instance that binds its own is named by start and doctor",
  { skip, timeout: 180_000 },
  async (t) => {
    const acc = await bootHome(t, ["echo"]);
    // echo binds $PORT itself (no socket activation): acc-ports lends it the port at each start.
    await echoInstance(acc, "ptvictim");
    await echoInstance(acc, "ptthief");
    const { port } = await instanceView(acc, "ptvictim");
    const keeper = createPortKeeper({ socketPath: path.join(acc.home, "run/ports.sock") });
    assert.equal(
      (await keeper.status()).ports.find((p) => p.port === port)?.mode,
      "held",
      "a stopped instance's port is held",
    );
    // As if another user had been faster than the app in the moment the port was lent.
    await keeper.release(port);
    const thief = await userIdentity("acc-ptthief");
    const squatter = squat(thief, port, "stolen", 60_000);
    t.after(() => squatter.stop());
    const bound = await squatter.waitOutput(/bound (\d+)/);

    const doctor = await runAcc(acc, ["doctor"]);
    assert.equal(doctor.code, 1);
    assert.match(
      doctor.stdout,
      new RegExp(
        `ptvictim: port ${port} is held by uid ${thief.uid} \\(acc-ptthief\\), pid ${bound[1]}`,
      ),
    );
    const start = await runAcc(acc, ["start", "ptvictim"]);
    assert.equal(start.code, 1);
    assert.match(start.stderr, new RegExp(`uid ${thief.uid} \\(acc-ptthief\\), pid ${bound[1]}`));
    assert.equal((await instanceView(acc, "ptvictim")).state, "failed");

    // Once the squatter is gone the instance starts again (acc-ports holds the port again as
    // soon as the squatter's last connections, which acc's health checks made, leave TIME_WAIT).
    await squatter.stop();
    await accOk(acc, ["start", "ptvictim"]);
    assert.equal((await acc.request("ptvictim.localhost")).status, 200);
    assert.equal((await runAcc(acc, ["doctor"])).stdout.includes("ptthief"), false);
  },
);
