import { createInstance } from "../services/instances.js";
import { flag, listOption, positional, stringOption, type Command } from "./command.js";
import { instanceJson } from "./instance-view.js";

export const createCommand: Command = {
  name: "create",
  summary: "Create an instance of a model, start it and print its URL.",
  usage:
    "MODEL [--name N] [--host H]... [--param K=V]... [--idle-timeout D] [--limit K=V]... [--no-start]",
  help: [
    "--name N            instance name (a DNS label); default MODEL1, MODEL2, ...",
    "--host H            extra host name it answers to (repeatable); NAME.<domain> is always one",
    "--param K=V         a model parameter (repeatable); secrets not given are generated",
    "--idle-timeout D    stop after D without requests (30s, 15m, 2h, never)",
    "--limit K=V         a limit of its cgroup (repeatable): memory=512M, cpu=0.5, pids=200",
    "--no-start          create it stopped",
  ],
  options: {
    name: { type: "string" },
    host: { type: "string", multiple: true },
    param: { type: "string", multiple: true },
    "idle-timeout": { type: "string" },
    limit: { type: "string", multiple: true },
    "no-start": { type: "boolean" },
  },
  positionals: { min: 1, max: 1, names: "MODEL" },
  json: true,
  async run(args, cli) {
    const ctx = await cli.open();
    const name = stringOption(args, "name");
    const idleTimeout = stringOption(args, "idle-timeout");
    const result = await createInstance(ctx, {
      model: positional(args, 0),
      ...(name !== undefined ? { name } : {}),
      ...(idleTimeout !== undefined ? { idleTimeout } : {}),
      hosts: listOption(args, "host"),
      params: listOption(args, "param"),
      limits: listOption(args, "limit"),
      start: !flag(args, "no-start"),
    });
    const view = instanceJson(ctx, result.instance);
    const lines = [`${view.name} ${view.state}: ${result.url}`];
    const generated = Object.entries(result.generated);
    if (generated.length > 0) {
      lines.push("generated secrets (shown once; kept in the instance's env file):");
      for (const [key, value] of generated) lines.push(`  ${key} = ${value}`);
      lines.push(`  stored in ${result.secretsFile}`);
    }
    return {
      data: { ...view, generated: result.generated, secrets_file: result.secretsFile },
      text: lines.join("\n"),
    };
  },
};
