import { spawn } from "node:child_process";
import { validateInstanceName } from "../core/validate.js";
import { AccError } from "../lib/errors.js";
import { listBackups } from "../services/backups.js";
import { readEnvSecrets } from "../services/instance-secrets.js";
import { backupInstance, restoreAsNew, restoreInstance } from "../services/instance-restore.js";
import { getInstance } from "../services/instances.js";
import { flag, positional, type Command } from "./command.js";
import { instanceJson } from "./instance-view.js";
import { table } from "./output.js";

export const backupCommand: Command = {
  name: "backup",
  summary: "Back up an instance (its files and its database) without waking it.",
  usage: "NAME [--json]",
  help: [],
  options: {},
  positionals: { min: 1, max: 1, names: "NAME" },
  json: true,
  async run(args, cli) {
    const name = validateInstanceName(positional(args, 0));
    const ctx = await cli.open();
    const { dir, warnings } = await backupInstance(ctx, name);
    // tar's warnings name files it skipped or saw change (escaped: the names are the instance's).
    const text = [
      `backup of ${name} in ${dir}`,
      ...(warnings.length > 0 ? ["tar warned:", ...warnings.map((w) => `  ${w}`)] : []),
    ].join("\n");
    return { data: { name, backup: dir, warnings }, text };
  },
};

export const backupsCommand: Command = {
  name: "backups",
  summary: "List backups, newest first (those of destroyed instances too).",
  usage: "[NAME] [--json]",
  help: [],
  options: {},
  positionals: { min: 0, max: 1, names: "NAME" },
  json: true,
  async run(args, cli) {
    const name =
      args.positionals[0] === undefined ? undefined : validateInstanceName(positional(args, 0));
    const ctx = await cli.open();
    const backups = await listBackups(ctx, name);
    const text =
      backups.length === 0
        ? "no backups"
        : table(
            ["BACKUP", "CREATED", "SIZE", "DATABASE", "REASON"],
            backups.map((b) => [
              b.id,
              b.created_at,
              `${(b.bytes / 1024).toFixed(0)} kB`,
              b.database ? "yes" : "no",
              b.reason,
            ]),
          );
    return { data: backups, text };
  },
};

export const restoreCommand: Command = {
  name: "restore",
  summary:
    "Restore a backup into an instance (stopped meanwhile, started again if it was running), or with --as-new create a new instance NAME from it.",
  usage: "NAME BACKUP [--as-new] [--json]",
  help: [
    "--as-new            create NAME from the backup: rendered for NAME (port, hosts, new database",
    "                    credentials) from the backup's model version if this home has it, else the",
    "                    current one; data, database and parameters from the backup",
  ],
  options: { "as-new": { type: "boolean" } },
  positionals: { min: 2, max: 2, names: "NAME BACKUP" },
  json: true,
  async run(args, cli) {
    const name = validateInstanceName(positional(args, 0));
    const backup = positional(args, 1);
    const ctx = await cli.open();
    if (flag(args, "as-new")) {
      const created = await restoreAsNew(ctx, name, backup);
      const view = instanceJson(ctx, created.instance);
      const { model } = created;
      const rendered =
        model.from === "backup"
          ? `rendered from the backup's model version, ${model.name} ${model.version}`
          : `rendered from the current model, ${model.name} ${model.version} (the backup's version ${model.backupVersion} is no longer in this home)`;
      return {
        data: { ...view, model_from: model.from },
        text: `${name} created from ${backup}, ${rendered}: ${view.url}`,
      };
    }
    const view = instanceJson(ctx, await restoreInstance(ctx, name, backup));
    return { data: view, text: `${name} restored from ${backup} (${view.state})` };
  },
};

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
