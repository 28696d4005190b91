import { appendFileSync } from "node:fs";
import { stringOption, type Command } from "./command.js";

/**
 * supervisord hands an event to its listener only at its loop's next turn, and when nothing
 * else stirs it that turn waits for its 1 s poll timeout. A byte on the listener's stderr (read
 * and dropped) every this often keeps an exit's event from waiting more than this.
 */
const HEARTBEAT_MS = 200;

export const exitListenerCommand: Command = {
  name: "exit-listener",
  summary:
    "Run acc's exit listener: supervisord tells it every exit of an instance's process, and it records those acc did not ask for as crashes. acc boot runs it under supervisord (its stdin and stdout are supervisord's).",
  usage: "[--log FILE]",
  help: ["--log FILE          append what it has to say to FILE (else stderr)"],
  options: { log: { type: "string" } },
  positionals: { min: 0, max: 0, names: "" },
  json: false,
  async run(args, cli) {
    const ctx = await cli.open();
    const file = stringOption(args, "log");
    // stdout is the protocol's, and stderr the heartbeat's when a file is given.
    const log = (line: string): void => {
      const text = `${new Date().toISOString()} ${line}\n`;
      if (file === undefined) process.stderr.write(text);
      else appendFileSync(file, text, { mode: 0o600 });
    };
    const heartbeat =
      file === undefined ? undefined : setInterval(() => process.stderr.write("."), HEARTBEAT_MS);
    const { createExitRecorder, listenForExits } = await import("../services/exit-listener.js");
    const recorder = createExitRecorder(ctx, log);
    log("acc exit-listener: listening");
    try {
      await listenForExits({
        input: process.stdin,
        output: process.stdout,
        onExit: (name) => recorder.onExit(name),
      });
      await recorder.idle();
    } finally {
      clearInterval(heartbeat);
    }
    return { data: null, text: "" };
  },
};
