// Phusion Passenger Standalone (Debian package `passenger`, builtin engine, --min-instances 0)
// serving the same hello app, for bench/wake's side-by-side: each wake restarts the app
// (passenger-config restart-app leaves no process with --min-instances 0), then times one GET.
// Passenger's Node loader require()s the startup file, which hello's top-level await forbids:
// a one-line CommonJS file imports it instead (in the bench's copy, not in models/hello).
import { spawn, type ChildProcess } from "node:child_process";
import { access, cp, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { exec } from "../src/lib/exec.js";
import { freePort, isAlive, makeTempDir, removeDir, waitFor } from "../test/harness/common.js";
import { timedGet, type TimedAnswer } from "./stats.js";

const PASSENGER = "/usr/bin/passenger";
const PASSENGER_CONFIG = "/usr/bin/passenger-config";

export async function passengerInstalled(): Promise<boolean> {
  try {
    await access(PASSENGER);
    await access(PASSENGER_CONFIG);
    return true;
  } catch {
    return false;
  }
}

export interface PassengerHello {
  /** Restarts the app (no process left), then times one GET / until the app's whole answer. */
  wake(): Promise<TimedAnswer>;
  version: string;
  stop(): Promise<void>;
}

export async function startPassengerHello(helloDir: string): Promise<PassengerHello> {
  const dir = await makeTempDir("acc-bench-passenger-");
  const app = path.join(dir, "app");
  await cp(helloDir, app, { recursive: true });
  await writeFile(path.join(app, "start.cjs"), 'import("./server.js");\n');
  const port = await freePort();
  const env = { ...process.env, PASSENGER_INSTANCE_REGISTRY_DIR: dir };
  const pidFile = path.join(dir, "passenger.pid");
  // PORT only passes hello's check: Passenger's loader gives the app its own socket.
  const child: ChildProcess = spawn(
    PASSENGER,
    [
      "start",
      "--engine",
      "builtin",
      "--address",
      "127.0.0.1",
      "--port",
      String(port),
      "--min-instances",
      "0",
      "--app-type",
      "node",
      "--startup-file",
      "start.cjs",
      "--environment",
      "production",
      "--log-file",
      path.join(dir, "passenger.log"),
      "--pid-file",
      pidFile,
      "--instance-registry-dir",
      dir,
      "--envvar",
      "PORT=1",
      "--envvar",
      `DATA_DIR=${dir}`,
      "--envvar",
      "GREETING=Hello",
    ],
    { cwd: app, env, stdio: "ignore" },
  );
  const stop = async (): Promise<void> => {
    if (child.pid !== undefined && isAlive(child.pid)) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    // The core (its pid file) outlives the ruby front when it was already going away.
    const core = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
    if (core > 0 && isAlive(core)) process.kill(core, "SIGTERM");
    await waitFor("Passenger to exit", () => (core > 0 && isAlive(core) ? undefined : true));
    await removeDir(dir);
  };
  try {
    await waitFor(
      "Passenger to answer",
      async () => {
        const answer = await timedGet(port, "hello.localhost", { timeoutMs: 10_000 });
        return answer.status === 200 ? true : undefined;
      },
      60_000,
      200,
    );
  } catch (error) {
    const log = await readFile(path.join(dir, "passenger.log"), "utf8").catch(() => "");
    await stop();
    throw new Error(`${(error as Error).message}\n${log.slice(-2000)}`);
  }
  const version = (await exec(PASSENGER, ["--version"])).stdout.split("\n")[0] ?? "";
  return {
    version,
    async wake() {
      await exec(PASSENGER_CONFIG, ["restart-app", app], { env });
      const answer = await timedGet(port, "hello.localhost", { timeoutMs: 60_000 });
      if (answer.status !== 200 || !answer.body.includes("<h1>"))
        throw new Error(`Passenger answered ${answer.status}: ${answer.body.slice(0, 200)}`);
      return answer;
    },
    stop,
  };
}
