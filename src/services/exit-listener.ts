// The exit listener: an event listener of acc's supervisord (PROCESS_STATE_EXITED), so acc
// learns of every exit of an instance's process as it happens, and records the crashes.
import type { Readable, Writable } from "node:stream";
import {
  LISTENER_OK,
  LISTENER_READY,
  instanceOfEvent,
  takeEvents,
} from "../drivers/supervisord/events.js";
import type { AccContext } from "./context.js";
import { handleProgramExit } from "./crashes.js";

export interface ExitListenerDeps {
  input: Readable;
  output: Writable;
  /** Called for each exit of an instance's process; must not throw. */
  onExit(name: string): void;
}

/**
 * Speaks the protocol until input ends. Each event is acknowledged at once, before it is
 * handled: supervisord sends nothing to a busy listener, and an exit must never wait behind
 * the recording of another.
 */
export function listenForExits(deps: ExitListenerDeps): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  deps.output.write(LISTENER_READY);
  return new Promise((resolve, reject) => {
    deps.input.on("data", (chunk: Buffer) => {
      let taken;
      try {
        taken = takeEvents(Buffer.concat([pending, chunk]));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      pending = taken.rest;
      for (const event of taken.events) {
        deps.output.write(LISTENER_OK + LISTENER_READY);
        const name = event.name === "PROCESS_STATE_EXITED" ? instanceOfEvent(event) : undefined;
        if (name !== undefined) deps.onExit(name);
      }
    });
    deps.input.on("end", () => resolve());
    deps.input.on("error", reject);
  });
}

/**
 * Records each instance's exits one after another (the lease orders them with starts and
 * stops anyway); different instances in parallel.
 */
export function createExitRecorder(
  ctx: AccContext,
  log: (line: string) => void,
): { onExit(name: string): void; idle(): Promise<void> } {
  const queues = new Map<string, Promise<void>>();
  return {
    onExit(name) {
      log(`${name}: its process exited`);
      const previous = queues.get(name) ?? Promise.resolve();
      const next = previous
        .then(async () => {
          const outcome = await handleProgramExit(ctx, name);
          if (outcome === "crash")
            log(`${name}: its process exited on its own: recorded as failed`);
        })
        .catch((error: unknown) => {
          log(
            `${name}: recording an exit failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        })
        .finally(() => {
          if (queues.get(name) === next) queues.delete(name);
        });
      queues.set(name, next);
    },
    async idle() {
      await Promise.all(queues.values());
    },
  };
}
