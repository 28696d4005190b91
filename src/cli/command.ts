import { parseArgs, type ParseArgsConfig } from "node:util";
import { AccError } from "../lib/errors.js";
import { didYouMean } from "./suggest.js";
import type { AccContext, Progress } from "../services/context.js";
import type { ApiClient } from "./client.js";

export type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;

export interface CliEnv {
  home: string;
  env: NodeJS.ProcessEnv;
  accRoot: string;
  json: boolean;
  interactive: boolean;
  progress: Progress;
  /** Progress is shown (stderr is a terminal and no --json): long API calls stream it. */
  showsProgress: boolean;
  /** Opens the home's services (config, store, drivers); closed by bin/ after the command. */
  open(): Promise<AccContext>;
  confirm(question: string): Promise<boolean>;
  /** Writes a line as it happens (logs -f), for commands that stream. */
  write(text: string): void;
  /** acc server's API: its local socket, or --url / ACC_API_URL. */
  api(): ApiClient;
  /** --url or ACC_API_URL: only the API, nothing of this machine's home. */
  remote: boolean;
  /**
   * With --json to a pipe or file (not a terminal, which gets it indented): where an API answer
   * that needs no rendering is copied as it comes (acc list at 10,000 instances).
   */
  jsonOut?: NodeJS.WritableStream;
}

export interface CommandResult {
  /** What --json prints. */
  data: unknown;
  /** data as JSON already (the API's answer), printed as is by --json when not on a terminal. */
  raw?: string;
  /** What a person sees; a function when it costs something to make and --json does not need it. */
  text: string | (() => string);
  /** --json's output is written already (copied from the API to jsonOut). */
  printed?: boolean;
  exitCode?: number;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export interface Command {
  name: string;
  summary: string;
  /** Usage line after `acc NAME`. */
  usage: string;
  /** Lines of help after the usage: one per option. */
  help: string[];
  options: OptionSpecs;
  positionals: { min: number; max: number; names: string };
  /** Whether --json is accepted. */
  json: boolean;
  /** The operation it runs (src/operations), when it is one: the API can run it too. */
  operation?: string;
  /** Left out of `acc help`, suggestions and completions: acc's own plumbing. */
  hidden?: boolean;
  run(args: ParsedArgs, cli: CliEnv): Promise<CommandResult>;
}

/** Parses a command's own arguments; any mistake is a usage error (exit 2) naming it. */
export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  const options: OptionSpecs = { ...command.options, help: { type: "boolean", short: "h" } };
  if (command.json) options.json = { type: "boolean" };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    const message = error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error);
    const unknown = /^Unknown option '(--[^'=]+)'/.exec(message)?.[1];
    const suggestion =
      unknown === undefined ? undefined : didYouMean(unknown, Object.keys(options), "--");
    throw new AccError(
      "ACC_USAGE",
      `acc ${command.name}: ${message.replace(/\. To specify.*$/, "")}`,
      { hint: suggestion ?? `acc ${command.name} --help` },
    );
  }
  const { values, positionals } = parsed;
  if (!values.help) checkPositionals(command, positionals);
  return { values: values as ParsedArgs["values"], positionals };
}

/** Throws ACC_USAGE unless the command takes this many arguments. */
export function checkPositionals(
  command: Pick<Command, "name" | "usage" | "positionals">,
  positionals: readonly string[],
): void {
  if (positionals.length < command.positionals.min) {
    throw new AccError("ACC_USAGE", `acc ${command.name}: missing ${command.positionals.names}`, {
      hint: `usage: acc ${command.name} ${command.usage}`,
    });
  }
  if (positionals.length > command.positionals.max) {
    throw new AccError(
      "ACC_USAGE",
      `acc ${command.name}: unexpected argument ${JSON.stringify(positionals[command.positionals.max])}`,
      { hint: `usage: acc ${command.name} ${command.usage}` },
    );
  }
}

export function commandHelp(command: Command): string {
  const lines = [`usage: acc ${command.name} ${command.usage}`.trimEnd(), "", command.summary];
  const help = [...command.help];
  if (command.json) help.push("--json              print one JSON document (for scripts)");
  help.push("-h, --help          show this help");
  lines.push("", "options:", ...help.map((line) => `  ${line}`));
  return lines.join("\n");
}

export function stringOption(args: ParsedArgs, key: string): string | undefined {
  const value = args.values[key];
  return typeof value === "string" ? value : undefined;
}

export function listOption(args: ParsedArgs, key: string): string[] {
  const value = args.values[key];
  return Array.isArray(value) ? value : typeof value === "string" ? [value] : [];
}

export function flag(args: ParsedArgs, key: string): boolean {
  return args.values[key] === true;
}

export function positional(args: ParsedArgs, index: number): string {
  const value = args.positionals[index];
  if (value === undefined) throw new Error(`positional ${index} missing after validation`);
  return value;
}
