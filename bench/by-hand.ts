import { spawn } from "node:child_process";
import path from "node:path";
import { waitHealthy } from "../src/services/health.js";
import { freePort } from "../test/harness/common.js";
import { timedGet } from "./stats.js";

const root = path.resolve(import.meta.dirname, "../..");

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
  const child = spawn(process.execPath, ["server.js"], {
    cwd: path.join(root, "models/hello"),
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
