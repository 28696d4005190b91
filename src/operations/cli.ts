import {
  checkPositionals,
  type Command,
  type CliEnv,
  type CommandResult,
  type ParsedArgs,
} from "../cli/command.js";
import { didYouMean } from "../cli/suggest.js";
import { AccError } from "../lib/errors.js";
import type { Operation, OperationCall } from "./types.js";

/** The operation run in this process (the server is down, or the command must work without it). */
export async function runHere(cli: CliEnv, op: Operation, input: object): Promise<unknown> {
  return op.run(await directCall(cli), input);
}

async function directCall(cli: CliEnv): Promise<OperationCall> {
  return {
    ctx: await cli.open(),
    caller: { kind: "local" },
    signal: new AbortController().signal,
    progress: cli.progress,
  };
}

/**
 * An operation's answer: through acc server's API when it is up (the local socket, or --url),
 * else here. `raw` is the JSON as the server sent it: --json prints it as is.
 */
export async function callOperation(
  cli: CliEnv,
  op: Operation,
  input: object,
): Promise<{ output: unknown; raw?: string }> {
  const local = op.cli?.mode === "direct" && !cli.remote;
  const raw = local
    ? undefined
    : await cli.api().call(op, input, cli.showsProgress ? cli.progress : undefined);
  if (raw !== undefined) return { output: JSON.parse(raw) as unknown, raw };
  return { output: await runHere(cli, op, input) };
}

/** A stream (logs -f, events -f): each event rendered as it comes, until Ctrl-C. */
async function followOperation(cli: CliEnv, op: Operation, input: object): Promise<void> {
  const spec = op.cli;
  if (!spec?.renderEvent || !op.follow) throw new Error(`${op.id} has no stream`);
  const abort = new AbortController();
  process.once("SIGINT", () => abort.abort());
  const write = (event: unknown): void => {
    const text = spec.renderEvent?.(event);
    if (text) cli.write(text);
  };
  if (await cli.api().follow(op, input, write, abort.signal)) return;
  const call = { ...(await directCall(cli)), signal: abort.signal };
  await op.follow(call, input, write);
}

/** The command `acc <op.cli.name>`: the operation's CLI spec, run through the API or here. */
export function commandFromOperation(op: Operation): Command {
  const spec = op.cli;
  if (!spec) throw new Error(`${op.id} has no command`);
  return {
    name: spec.name,
    summary: op.summary,
    usage: spec.usage,
    help: spec.help,
    options: spec.options,
    positionals: spec.positionals,
    json: spec.json,
    operation: op.id,
    async run(args, cli): Promise<CommandResult> {
      const input = spec.input(args) as object;
      if (spec.before) {
        const cancelled = await spec.before(input, cli);
        if (cancelled) return cancelled;
      }
      const following =
        spec.renderEvent !== undefined && (input as { follow?: boolean }).follow === true;
      if (
        spec.pipeJson === true &&
        cli.jsonOut !== undefined &&
        !following &&
        spec.mode !== "direct" &&
        (await cli.api().pipe(op, input, cli.jsonOut))
      )
        return { data: null, text: "", printed: true };
      // The first answer is a plain one; the stream comes after it.
      const { output, raw } = await callOperation(
        cli,
        op,
        following ? { ...input, follow: undefined } : input,
      );
      const shown = spec.render(output, input, { now: new Date() });
      if (following) {
        const first = typeof shown.text === "function" ? shown.text() : shown.text;
        if (first) cli.write(`${first}\n`);
        await followOperation(cli, op, { ...input, ...(spec.followFrom?.(output) ?? {}) });
        return { data: null, text: "" };
      }
      return { data: output, ...(raw !== undefined ? { raw } : {}), ...shown };
    },
  };
}

/**
 * `acc GROUP ACTION ...` (acc host add, acc tls issue): the action's operation as a command,
 * its arguments checked as for any command.
 */
export function runAction(
  group: string,
  actions: Readonly<Record<string, Operation>>,
  args: ParsedArgs,
  cli: CliEnv,
  usage: string,
): Promise<CommandResult> {
  const [action = "", ...rest] = args.positionals;
  const op = actions[action];
  if (!op) {
    throw new AccError("ACC_USAGE", `acc ${group}: unknown action ${JSON.stringify(action)}`, {
      hint: didYouMean(action, Object.keys(actions)) ?? `usage: acc ${group} ${usage}`,
    });
  }
  const command = commandFromOperation(op);
  checkPositionals(command, rest);
  return command.run({ values: args.values, positionals: rest }, cli);
}
