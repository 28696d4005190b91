import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { waitHealthy } from "../src/services/health.js";
import { freePort } from "../test/harness/common.js";
import { timedGet } from "./stats.js";

const root = path.resolve(import.meta.dirname, "../..");

/** hello's folder in acc's package. */
export const HELLO_DIR = path.join(root, "models/hello");

function spawnHello(port: number, dataDir: string): ChildProcess {
  return spawn(process.execPath, ["server.js"], {
    cwd: HELLO_DIR,
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      ACC_INSTANCE: "byhand",
      GREETING: "Hello",
    },
    stdio: "ignore",
  });
}

/**
 * The hello app started directly (no supervisord, no acc), polled like acc polls it (every
 * 2 ms): spawn to healthy, then the time of its first answer to a GET straight to its port
 * (a wake's time includes the app's own first answer too). The baseline acc is measured against.
 */
export async function bootHelloByHand(
  dataDir: string,
): Promise<{ healthy: number; firstAnswer: number }> {
  const port = await freePort();
  const started = performance.now();
  const child = spawnHello(port, dataDir);
  try {
    const result = await waitHealthy({ port, path: "/healthz", timeoutMs: 30_000 });
    if (!result.ok) throw new Error(result.reason);
    const healthy = performance.now() - started;
    const answer = await timedGet(port, "byhand.localhost", { timeoutMs: 30_000 });
    if (answer.status !== 200) throw new Error(`the app by hand answered ${answer.status}`);
    return { healthy, firstAnswer: answer.ms };
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
}

/**
 * The hello app started directly and asked for GET / at once, the request tried again every
 * 2 ms until the app listens: spawn to the app's whole first answer. The floor of a wake.
 */
export async function bootHelloToFirstAnswer(dataDir: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawnHello(port, dataDir);
  try {
    for (;;) {
      const answer = await timedGet(port, "byhand.localhost", { timeoutMs: 30_000 });
      if (answer.status === 200) return performance.now() - started;
      if (answer.status !== 0) throw new Error(`the app by hand answered ${answer.status}`);
      if (performance.now() - started > 30_000) throw new Error("the app by hand never answered");
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
}
