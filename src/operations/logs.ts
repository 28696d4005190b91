import { flag, positional, stringOption } from "../cli/command.js";
import { escapeUntrusted } from "../core/untrusted-text.js";
import { validateInstanceName } from "../core/validate.js";
import { AccError } from "../lib/errors.js";
import { NAME } from "./schemas.js";
import type { Operation } from "./types.js";

interface LogsInput {
  name: string;
  lines?: number;
  follow?: boolean;
  /** Where following starts: the size the first answer gave. */
  from?: number;
}

interface LogsOutput {
  /** As the app wrote it: untrusted, escape it before showing it. */
  text: string;
  size: number;
}

export const logsOperation: Operation<LogsInput, LogsOutput> = {
  id: "instance.logs",
  summary: "Show the last lines of an instance's log (its stdout and stderr).",
  method: "GET",
  path: "/instances/{name}/logs",
  input: {
    type: "object",
    properties: {
      name: NAME,
      lines: {
        type: "integer",
        minimum: 0,
        maximum: 9_999_999,
        default: 50,
        description: "how many lines",
      },
      follow: {
        type: "boolean",
        description:
          "server-sent events: each new piece of the log as { text }, until the client leaves",
      },
      from: {
        type: "integer",
        minimum: 0,
        description: "with follow: the byte offset to start from (the size of a previous answer)",
      },
    },
    required: ["name"],
    additionalProperties: false,
  },
  output: {
    type: "object",
    required: ["text", "size"],
    properties: {
      text: {
        type: "string",
        description: "as the app wrote it: untrusted, escape it before showing it",
      },
      size: { type: "integer", description: "the log's size: follow from here" },
    },
  },
  stream: {
    event: { type: "object", required: ["text"], properties: { text: { type: "string" } } },
  },
  errors: ["ACC_NOT_FOUND"],
  permission: "read",
  instanceToken: true,
  async run(call, input) {
    const { tailInstanceLog } = await import("../services/instance-logs.js");
    return tailInstanceLog(call.ctx, validateInstanceName(input.name), input.lines ?? 50);
  },
  async follow(call, input, send) {
    const { followInstanceLog, tailInstanceLog } = await import("../services/instance-logs.js");
    const name = validateInstanceName(input.name);
    const from = input.from ?? (await tailInstanceLog(call.ctx, name, 0)).size;
    await followInstanceLog(call.ctx, name, from, (text) => send({ text }), call.signal);
  },
  cli: {
    name: "logs",
    usage: "NAME [-f] [-n N]",
    help: [
      "-n, --lines N       how many lines (default 50)",
      "-f, --follow        keep printing new lines until Ctrl-C",
    ],
    options: { follow: { type: "boolean", short: "f" }, lines: { type: "string", short: "n" } },
    positionals: { min: 1, max: 1, names: "NAME" },
    json: false,
    input(args) {
      const name = validateInstanceName(positional(args, 0));
      const linesText = stringOption(args, "lines") ?? "50";
      if (!/^\d{1,7}$/.test(linesText)) {
        throw new AccError(
          "ACC_USAGE",
          `acc logs: invalid line count ${JSON.stringify(linesText)}`,
          {
            hint: "use a whole number",
          },
        );
      }
      return { name, lines: Number(linesText), ...(flag(args, "follow") ? { follow: true } : {}) };
    },
    // What the app printed is untrusted: escape sequences in it must not reach the terminal.
    render: (output) => ({ text: escapeUntrusted(output.text, { keepLines: true }) }),
    renderEvent: (event) => escapeUntrusted((event as { text: string }).text, { keepLines: true }),
    followFrom: (output) => ({ from: output.size }),
  },
};
