import { flag, positional, type CommandResult } from "../cli/command.js";
import type { AccErrorCode } from "../lib/errors.js";
import { AccError } from "../lib/errors.js";
import { validateInstanceName } from "../core/validate.js";
import type { AccContext } from "../services/context.js";
import type { InstanceJson } from "../services/instance-view.js";
import type { InstanceRecord } from "../store/store.js";
import { INSTANCE, NAME, NAME_INPUT } from "./schemas.js";
import type { Operation } from "./types.js";
import { showOperation } from "./instance-read.js";
import { callOperation } from "./cli.js";
import { causeOf } from "./tokens.js";

type InstanceAction = "start" | "stop" | "restart" | "suspend" | "resume";

async function runAction(
  ctx: AccContext,
  action: InstanceAction,
  name: string,
): Promise<InstanceJson> {
  const services = await import("../services/instances.js");
  const { instanceJson } = await import("../services/instance-view.js");
  const act: Record<InstanceAction, (ctx: AccContext, name: string) => Promise<InstanceRecord>> = {
    start: (c, n) => services.startInstance(c, n),
    stop: (c, n) => services.stopInstance(c, n),
    restart: (c, n) => services.restartInstance(c, n),
    suspend: services.suspendInstance,
    resume: services.resumeInstance,
  };
  return instanceJson(ctx, await act[action](ctx, name));
}

/**
 * An operation on one instance that answers with the instance after it; `done` says it in
 * words (by default: NAME <verb>, and its URL when it runs).
 */
function instanceAction(options: {
  action: InstanceAction;
  summary: string;
  verb: string;
  errors: readonly AccErrorCode[];
  /** An instance:NAME token may do it too. */
  instanceToken: boolean;
  done?: (name: string) => string;
}): Operation<{ name: string }, InstanceJson> {
  return {
    id: `instance.${options.action}`,
    summary: options.summary,
    method: "POST",
    path: `/instances/{name}/${options.action}`,
    input: NAME_INPUT,
    output: INSTANCE,
    errors: ["ACC_NOT_FOUND", "ACC_BUSY", "ACC_STATE", ...options.errors],
    permission: "change",
    instanceToken: options.instanceToken,
    long: true,
    run: (call, input) => runAction(call.ctx, options.action, validateInstanceName(input.name)),
    cli: {
      name: options.action,
      usage: "NAME",
      help: [],
      options: {},
      positionals: { min: 1, max: 1, names: "NAME" },
      json: true,
      input: (args) => ({ name: validateInstanceName(positional(args, 0)) }),
      render: (view, { name }) => ({
        text:
          options.done?.(name) ??
          `${name} ${options.verb}${view.state === "running" ? `: ${view.url}` : ""}`,
      }),
    },
  };
}

export const startOperation = instanceAction({
  action: "start",
  summary: "Start an instance and wait until its health check passes.",
  verb: "is running",
  errors: ["ACC_START_FAILED", "ACC_NOT_BOOTED", "ACC_SUPERVISOR"],
  instanceToken: true,
});

export const stopOperation = instanceAction({
  action: "stop",
  summary: "Stop an instance.",
  verb: "is stopped",
  errors: ["ACC_STOP_FAILED", "ACC_NOT_BOOTED", "ACC_SUPERVISOR"],
  instanceToken: true,
});

export const restartOperation = instanceAction({
  action: "restart",
  summary: "Stop an instance, then start it and wait for its health check.",
  verb: "is running",
  errors: ["ACC_START_FAILED", "ACC_STOP_FAILED", "ACC_NOT_BOOTED", "ACC_SUPERVISOR"],
  instanceToken: true,
});

export const suspendOperation = instanceAction({
  action: "suspend",
  summary:
    "Stop an instance and keep it down: requests get a 503 page and do not wake it, until acc resume.",
  verb: "is suspended",
  errors: ["ACC_STOP_FAILED", "ACC_NOT_BOOTED", "ACC_SUPERVISOR"],
  instanceToken: false,
  done: (name) => `${name} is suspended: requests get a 503 page until acc resume ${name}`,
});

export const resumeOperation = instanceAction({
  action: "resume",
  summary: "Lift a suspension: the instance is stopped again and its next request starts it.",
  verb: "is resumed",
  errors: [],
  instanceToken: false,
  done: (name) => `${name} is resumed: its next request starts it (or acc start ${name})`,
});

interface DestroyInput {
  name: string;
  backup?: boolean;
}

interface DestroyOutput {
  name: string;
  destroyed: boolean;
  backup?: string | null;
}

export const destroyOperation: Operation<DestroyInput, DestroyOutput> = {
  id: "instance.destroy",
  summary:
    "Destroy an instance: its program, nginx routing, files, system user and store row. A final backup is kept first (events are kept too).",
  method: "DELETE",
  path: "/instances/{name}",
  input: {
    type: "object",
    properties: {
      name: NAME,
      backup: {
        type: "boolean",
        default: true,
        description: "keep a final backup first (default true; false: none)",
      },
    },
    required: ["name"],
    additionalProperties: false,
  },
  output: {
    type: "object",
    required: ["name", "destroyed"],
    properties: {
      name: { type: "string" },
      destroyed: { type: "boolean" },
      backup: { type: ["string", "null"], description: "the final backup's folder" },
    },
  },
  errors: ["ACC_NOT_FOUND", "ACC_BUSY", "ACC_NOT_BOOTED"],
  permission: "change",
  long: true,
  async run(call, input) {
    const { destroyInstance } = await import("../services/instances.js");
    const name = validateInstanceName(input.name);
    const result = await destroyInstance(call.ctx, name, { backup: input.backup !== false });
    // A later instance of the same name must not be reachable with this one's tokens.
    const { revokeInstanceTokens } = await import("../services/tokens.js");
    await revokeInstanceTokens(call.ctx, name, { cause: causeOf(call.caller) });
    return { name, destroyed: true, backup: result.backup };
  },
  cli: {
    name: "destroy",
    usage: "NAME [--yes] [--no-backup]",
    help: [
      "--yes               do not ask for confirmation",
      "--no-backup         skip the final backup",
    ],
    options: { yes: { type: "boolean", short: "y" }, "no-backup": { type: "boolean" } },
    positionals: { min: 1, max: 1, names: "NAME" },
    json: true,
    input: (args) => ({
      name: validateInstanceName(positional(args, 0)),
      ...(flag(args, "no-backup") ? { backup: false } : {}),
      // Read by `before` only: never sent.
      ...(flag(args, "yes") ? { yes: true } : {}),
    }),
    async before(input, cli): Promise<CommandResult | undefined> {
      const asked = input as DestroyInput & { yes?: boolean };
      const yes = asked.yes === true;
      delete asked.yes;
      // The instance must exist either way: a typo is "not found", not a question.
      const { output } = await callOperation(cli, showOperation, { name: input.name });
      const instance = output as InstanceJson;
      if (yes) return undefined;
      if (!cli.interactive) {
        throw new AccError("ACC_USAGE", `acc destroy ${input.name}: confirmation needed`, {
          hint: "pass --yes when not on a terminal",
        });
      }
      const backupWords =
        input.backup === false ? "WITHOUT a final backup" : "after a final backup";
      if (
        !(await cli.confirm(
          `Destroy instance ${input.name} (${instance.state}) ${backupWords}? [y/N] `,
        ))
      ) {
        return {
          data: { name: input.name, destroyed: false },
          text: "nothing destroyed",
          exitCode: 1,
        };
      }
      return undefined;
    },
    render: (result) => ({
      text: result.backup
        ? `${result.name} destroyed; final backup in ${result.backup}`
        : `${result.name} destroyed (no backup)`,
    }),
  },
};
