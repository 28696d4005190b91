import { AccError } from "../lib/errors.js";
import { validateInstanceName } from "../core/validate.js";
import {
  destroyInstance,
  restartInstance,
  startInstance,
  stopInstance,
} from "../services/instances.js";
import { flag, positional, type Command } from "./command.js";
import { instanceJson } from "./instance-view.js";

type Action = (
  ctx: Parameters<typeof startInstance>[0],
  name: string,
) => ReturnType<typeof startInstance>;

/**
 * A command that applies one operation to one instance and shows the instance after it;
 * `done` says it in words (by default: NAME <verb>, and its URL when it runs).
 */
export function lifecycleCommand(
  name: string,
  summary: string,
  verb: string,
  action: Action,
  done?: (instance: string) => string,
): Command {
  return {
    name,
    summary,
    usage: "NAME",
    help: [],
    options: {},
    positionals: { min: 1, max: 1, names: "NAME" },
    json: true,
    async run(args, cli) {
      const instanceName = validateInstanceName(positional(args, 0));
      const ctx = await cli.open();
      const instance = await action(ctx, instanceName);
      const view = instanceJson(ctx, instance);
      return {
        data: view,
        text:
          done?.(instanceName) ??
          `${instanceName} ${verb}${view.state === "running" ? `: ${view.url}` : ""}`,
      };
    },
  };
}

export const startCommand = lifecycleCommand(
  "start",
  "Start an instance and wait until its health check passes.",
  "is running",
  (ctx, name) => startInstance(ctx, name),
);
export const stopCommand = lifecycleCommand(
  "stop",
  "Stop an instance.",
  "is stopped",
  (ctx, name) => stopInstance(ctx, name),
);
export const restartCommand = lifecycleCommand(
  "restart",
  "Stop an instance, then start it and wait for its health check.",
  "is running",
  (ctx, name) => restartInstance(ctx, name),
);

export const destroyCommand: Command = {
  name: "destroy",
  summary:
    "Destroy an instance: its program, nginx routing, files, system user and store row. A final backup is kept first (events are kept too).",
  usage: "NAME [--yes] [--no-backup]",
  help: [
    "--yes               do not ask for confirmation",
    "--no-backup         skip the final backup",
  ],
  options: { yes: { type: "boolean", short: "y" }, "no-backup": { type: "boolean" } },
  positionals: { min: 1, max: 1, names: "NAME" },
  json: true,
  async run(args, cli) {
    const name = validateInstanceName(positional(args, 0));
    const ctx = await cli.open();
    const instance = await ctx.store.getInstance(name);
    if (!instance) {
      throw new AccError("ACC_NOT_FOUND", `no instance named ${JSON.stringify(name)}`, {
        hint: "acc list shows the instances",
      });
    }
    if (!flag(args, "yes")) {
      if (!cli.interactive) {
        throw new AccError("ACC_USAGE", `acc destroy ${name}: confirmation needed`, {
          hint: "pass --yes when not on a terminal",
        });
      }
      const backupWords = flag(args, "no-backup")
        ? "WITHOUT a final backup"
        : "after a final backup";
      if (
        !(await cli.confirm(`Destroy instance ${name} (${instance.state}) ${backupWords}? [y/N] `))
      ) {
        return { data: { name, destroyed: false }, text: "nothing destroyed", exitCode: 1 };
      }
    }
    const result = await destroyInstance(ctx, name, { backup: !flag(args, "no-backup") });
    return {
      data: { name, destroyed: true, backup: result.backup },
      text: result.backup
        ? `${name} destroyed; final backup in ${result.backup}`
        : `${name} destroyed (no backup)`,
    };
  },
};
