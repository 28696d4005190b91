import { open, stat } from "node:fs/promises";
import { instancePaths } from "../core/paths.js";
import { escapeUntrusted } from "../core/untrusted-text.js";
import { validateInstanceName } from "../core/validate.js";
import { AccError, hasErrno } from "../lib/errors.js";
import { tailFile } from "../lib/files.js";
import { getInstance } from "../services/instances.js";
import { flag, positional, stringOption, type Command } from "./command.js";

export const logsCommand: Command = {
  name: "logs",
  summary: "Show the last lines of an instance's log (its stdout and stderr).",
  usage: "NAME [-f] [-n N]",
  help: [
    "-n, --lines N       how many lines (default 50)",
    "-f, --follow        keep printing new lines until Ctrl-C",
  ],
  options: { follow: { type: "boolean", short: "f" }, lines: { type: "string", short: "n" } },
  positionals: { min: 1, max: 1, names: "NAME" },
  json: false,
  async run(args, cli) {
    const name = validateInstanceName(positional(args, 0));
    const linesText = stringOption(args, "lines") ?? "50";
    if (!/^\d{1,7}$/.test(linesText)) {
      throw new AccError("ACC_USAGE", `acc logs: invalid line count ${JSON.stringify(linesText)}`, {
        hint: "use a whole number",
      });
    }
    const ctx = await cli.open();
    await getInstance(ctx, name);
    const file = instancePaths(ctx.home, name).appLog;
    // What the app printed is untrusted: escape sequences in it must not reach the terminal.
    const tail = await tailFile(file, Number(linesText));
    const text = escapeUntrusted(tail.text, { keepLines: true });
    const size = tail.size;
    if (!flag(args, "follow")) return { data: null, text };
    if (text) cli.write(`${text}\n`);
    let offset = size;
    const abort = new AbortController();
    process.once("SIGINT", () => abort.abort());
    // Poll rather than fs.watch: supervisord rotates the file, and inotify on a renamed file goes quiet.
    while (!abort.signal.aborted) {
      let current = 0;
      try {
        current = (await stat(file)).size;
      } catch (error) {
        if (!hasErrno(error, "ENOENT")) throw error;
      }
      if (current < offset) offset = 0;
      if (current > offset) {
        const handle = await open(file, "r");
        try {
          const buffer = Buffer.alloc(current - offset);
          await handle.read(buffer, 0, buffer.length, offset);
          cli.write(escapeUntrusted(buffer.toString("utf8"), { keepLines: true }));
        } finally {
          await handle.close();
        }
        offset = current;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return { data: null, text: "" };
  },
};
