import { validateInstanceName } from "../core/validate.js";
import { AccError } from "../lib/errors.js";
import { positional, type Command } from "./command.js";

export const dbCommand: Command = {
  name: "db",
  summary: "Open psql connected to an instance's database as its own role.",
  usage: "NAME",
  help: [],
  options: {},
  positionals: { min: 1, max: 1, names: "NAME" },
  json: false,
  async run(args, cli) {
    const name = validateInstanceName(positional(args, 0));
    const ctx = await cli.open();
    const { getInstance } = await import("../services/instances.js");
    const { readEnvSecrets } = await import("../services/instance-secrets.js");
    const instance = await getInstance(ctx, name);
    if (instance.database === null) {
      throw new AccError("ACC_STATE", `instance ${name} has no database`, {
        hint: "its model does not declare one",
      });
    }
    const env = await readEnvSecrets(ctx, name);
    const pgEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const key of ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"])
      pgEnv[key] = env[key];
    // Loaded here: every command loads this file.
    const { spawn } = await import("node:child_process");
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn("psql", [], { stdio: "inherit", env: pgEnv });
      child.on("error", (error) =>
        reject(
          new AccError("ACC_ENV", `cannot run psql: ${error.message}`, {
            hint: "apt-get install postgresql-client",
          }),
        ),
      );
      child.on("exit", (status) => resolve(status ?? 1));
    });
    return { data: null, text: "", exitCode: code };
  },
};
