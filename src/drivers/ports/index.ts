// The driver of acc-ports (libexec/acc-ports), the port keeper: it keeps every instance's port
// bound (never listening), so that no other local user can bind it and take the instance's
// visitors. This is the client side of its one-line protocol.
import { createConnection } from "node:net";
import { AccError, hasErrno } from "../../lib/errors.js";
import type { ServiceProgram } from "../supervisord/render.js";

export type PortMode = "new" | "held" | "lent" | "squatted";

export interface PortEntry {
  port: number;
  /** held: the keeper has it bound (a socket-activated app listens beside it); lent: an app bound it itself; squatted: another program has it. */
  mode: PortMode;
  /** The process that took or borrowed it. */
  pid: number | null;
}

export interface PortKeeper {
  /**
   * Holds the port from now on: "held", or "pending" when the app that has it still runs (its
   * exit gives it back), or "in-use" when another program has bound it (the keeper retries).
   */
  hold(port: number): Promise<"held" | "pending" | "in-use">;
  /** Lets the port go (the instance is destroyed). */
  release(port: number): Promise<void>;
  status(): Promise<{ pid: number; ports: PortEntry[] }>;
}

export interface PortKeeperDeps {
  socketPath: string;
  timeoutMs?: number;
}

/** The keeper's program under acc's supervisord: python3 is there wherever supervisord is. */
export function portKeeperProgram(options: {
  script: string;
  socketPath: string;
  statePath: string;
  logFile: string;
}): ServiceProgram {
  return {
    name: "acc-ports",
    // -I -S: no user site, no environment, no site-packages: it needs the standard library only.
    command: [
      "/usr/bin/python3",
      "-I",
      "-S",
      options.script,
      options.socketPath,
      options.statePath,
    ],
    logFile: options.logFile,
    stopSignal: "TERM",
    stopTimeoutSec: 5,
  };
}

export function createPortKeeper(deps: PortKeeperDeps): PortKeeper {
  const timeoutMs = deps.timeoutMs ?? 5_000;

  function call(request: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(deps.socketPath);
      let answer = "";
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new AccError("ACC_FAILED", `acc-ports did not answer "${request}" in ${timeoutMs} ms`),
        );
      }, timeoutMs);
      socket.setEncoding("utf8");
      socket.on("connect", () => socket.write(`${request}\n`));
      socket.on("data", (chunk: string) => {
        answer += chunk;
      });
      socket.on("end", () => {
        clearTimeout(timer);
        const line = answer.split("\n")[0] ?? "";
        if (line.startsWith("ok")) resolve(line.slice(3));
        else if (line.startsWith("err ")) reject(new AccError("ACC_CONFLICT", line.slice(4)));
        else reject(new Error(`acc-ports answered ${JSON.stringify(answer)} to "${request}"`));
      });
      socket.on("error", (error) => {
        clearTimeout(timer);
        if (hasErrno(error, "ENOENT") || hasErrno(error, "ECONNREFUSED")) {
          reject(
            new AccError("ACC_NOT_BOOTED", "acc-ports (the port keeper) is not running", {
              hint: "run acc boot",
              cause: error,
            }),
          );
        } else {
          reject(error);
        }
      });
    });
  }

  return {
    async hold(port) {
      try {
        const answer = await call(`hold ${checkPort(port)}`);
        return answer === "pending" ? "pending" : "held";
      } catch (error) {
        if (error instanceof AccError && error.code === "ACC_CONFLICT") return "in-use";
        throw error;
      }
    },
    async release(port) {
      await call(`release ${checkPort(port)}`);
    },
    async status() {
      return JSON.parse(await call("status")) as { pid: number; ports: PortEntry[] };
    },
  };
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bug: port ${port}`);
  return port;
}
