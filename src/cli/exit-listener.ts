import { createExitRecorder, listenForExits } from "../services/exit-listener.js";
import type { Command } from "./command.js";

export const exitListenerCommand: Command = {
  name: "exit-listener",
  summary:
    "Run acc's exit listener: supervisord tells it every exit of an instance's process, and it records those acc did not ask for as crashes. acc boot runs it under supervisord (its stdin and stdout are supervisord's).",
  usage: "",
  help: [],
  options: {},
  positionals: { min: 0, max: 0, names: "" },
  json: false,
  async run(_args, cli) {
    const ctx = await cli.open();
    // stdout is the protocol's: what the listener has to say goes to stderr, supervisord's log.
    const log = (line: string): void => {
      process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    };
    const recorder = createExitRecorder(ctx, log);
    log("acc exit-listener: listening");
    await listenForExits({
      input: process.stdin,
      output: process.stdout,
      onExit: (name) => recorder.onExit(name),
    });
    await recorder.idle();
    return { data: null, text: "" };
  },
};
