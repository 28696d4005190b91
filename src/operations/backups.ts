import { flag, positional } from "../cli/command.js";
import { table } from "../cli/output.js";
import { validateInstanceName } from "../core/validate.js";
import type { BackupInfo } from "../services/backups.js";
import type { InstanceJson } from "../services/instance-view.js";
import { BACKUP, INSTANCE, NAME, NAME_INPUT } from "./schemas.js";
import type { Download, Operation } from "./types.js";

interface BackupOutput {
  name: string;
  backup: string;
  warnings: string[];
}

export const backupOperation: Operation<{ name: string }, BackupOutput> = {
  id: "instance.backup",
  summary: "Back up an instance (its files and its database) without waking it.",
  method: "POST",
  path: "/instances/{name}/backups",
  input: NAME_INPUT,
  output: {
    type: "object",
    required: ["name", "backup", "warnings"],
    properties: {
      name: { type: "string" },
      backup: { type: "string", description: "the backup's folder" },
      warnings: { type: "array", items: { type: "string" }, description: "what tar warned about" },
    },
  },
  errors: ["ACC_NOT_FOUND", "ACC_BUSY"],
  permission: "change",
  instanceToken: true,
  long: true,
  async run(call, input) {
    const { backupInstance } = await import("../services/instance-restore.js");
    const name = validateInstanceName(input.name);
    const { dir, warnings } = await backupInstance(call.ctx, name);
    return { name, backup: dir, warnings };
  },
  cli: {
    name: "backup",
    usage: "NAME [--json]",
    help: [],
    options: {},
    positionals: { min: 1, max: 1, names: "NAME" },
    json: true,
    input: (args) => ({ name: validateInstanceName(positional(args, 0)) }),
    // tar's warnings name files it skipped or saw change (escaped: the names are the instance's).
    render: ({ name, backup, warnings }) => ({
      text: [
        `backup of ${name} in ${backup}`,
        ...(warnings.length > 0 ? ["tar warned:", ...warnings.map((w) => `  ${w}`)] : []),
      ].join("\n"),
    }),
  },
};

export const backupsOperation: Operation<{ name?: string }, BackupInfo[]> = {
  id: "backup.list",
  summary: "List backups, newest first (those of destroyed instances too).",
  method: "GET",
  path: "/backups",
  input: {
    type: "object",
    properties: { name: { ...NAME, description: "only this instance's backups" } },
    additionalProperties: false,
  },
  output: {
    type: "array",
    items: { allOf: [BACKUP, { type: "object", properties: { path: { type: "string" } } }] },
  },
  errors: [],
  permission: "read",
  instanceToken: true,
  async run(call, input) {
    const { listBackups } = await import("../services/backups.js");
    const name = input.name === undefined ? undefined : validateInstanceName(input.name);
    return listBackups(call.ctx, name);
  },
  cli: {
    name: "backups",
    usage: "[NAME] [--json]",
    help: [],
    options: {},
    positionals: { min: 0, max: 1, names: "NAME" },
    json: true,
    input: (args) =>
      args.positionals[0] === undefined ? {} : { name: validateInstanceName(positional(args, 0)) },
    render: (backups) => ({
      text:
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
            ),
    }),
  },
};

interface RestoreInput {
  name: string;
  backup: string;
  as_new?: boolean;
}

type RestoreOutput = InstanceJson & {
  model_from?: "backup" | "current";
  /** Said in words by the CLI (as_new only). */
  rendered_from?: { name: string; version: string; backup_version: string };
};

export const restoreOperation: Operation<RestoreInput, RestoreOutput> = {
  id: "instance.restore",
  summary:
    "Restore a backup into an instance (stopped meanwhile, started again if it was running), or with as_new create a new instance NAME from it.",
  method: "POST",
  path: "/instances/{name}/restore",
  input: {
    type: "object",
    properties: {
      name: NAME,
      backup: { type: "string", description: "the backup's id (acc backups), NAME/TIMESTAMP" },
      as_new: {
        type: "boolean",
        description:
          "create NAME from the backup, rendered for NAME from the backup's model version if this home has it, else the current one",
      },
    },
    required: ["name", "backup"],
    additionalProperties: false,
  },
  output: {
    allOf: [
      INSTANCE,
      {
        type: "object",
        properties: { model_from: { type: "string", enum: ["backup", "current"] } },
      },
    ],
  },
  errors: ["ACC_NOT_FOUND", "ACC_BUSY", "ACC_CONFLICT", "ACC_START_FAILED", "ACC_MODEL"],
  permission: "change",
  long: true,
  async run(call, input) {
    const { restoreAsNew, restoreInstance } = await import("../services/instance-restore.js");
    const { instanceJson } = await import("../services/instance-view.js");
    const name = validateInstanceName(input.name);
    if (input.as_new === true) {
      const created = await restoreAsNew(call.ctx, name, input.backup);
      const { model } = created;
      return {
        ...instanceJson(call.ctx, created.instance),
        model_from: model.from,
        rendered_from: {
          name: model.name,
          version: model.version,
          backup_version: model.backupVersion,
        },
      };
    }
    return instanceJson(call.ctx, await restoreInstance(call.ctx, name, input.backup));
  },
  cli: {
    name: "restore",
    usage: "NAME BACKUP [--as-new] [--json]",
    help: [
      "--as-new            create NAME from the backup: rendered for NAME (port, hosts, new database",
      "                    credentials) from the backup's model version if this home has it, else the",
      "                    current one; data, database and parameters from the backup",
    ],
    options: { "as-new": { type: "boolean" } },
    positionals: { min: 2, max: 2, names: "NAME BACKUP" },
    json: true,
    input: (args) => ({
      name: validateInstanceName(positional(args, 0)),
      backup: positional(args, 1),
      ...(flag(args, "as-new") ? { as_new: true } : {}),
    }),
    render(view, input) {
      const model = view.rendered_from;
      if (input.as_new !== true || model === undefined)
        return { text: `${view.name} restored from ${input.backup} (${view.state})` };
      const rendered =
        view.model_from === "backup"
          ? `rendered from the backup's model version, ${model.name} ${model.version}`
          : `rendered from the current model, ${model.name} ${model.version} (the backup's version ${model.backup_version} is no longer in this home)`;
      return { text: `${view.name} created from ${input.backup}, ${rendered}: ${view.url}` };
    },
  },
};

export const backupDownloadOperation: Operation<{ name: string; backup: string }, Download> = {
  id: "backup.download",
  summary:
    "Download one backup of an instance as a tar archive (its data, env file with its secrets, database dump, manifest).",
  method: "GET",
  path: "/instances/{name}/backups/{backup}/download",
  input: {
    type: "object",
    properties: {
      name: NAME,
      backup: {
        type: "string",
        pattern: "^[0-9]{8}T[0-9]{6,9}Z$",
        description: "the backup's time stamp (the part after NAME/ in acc backups)",
      },
    },
    required: ["name", "backup"],
    additionalProperties: false,
  },
  output: { type: "string", format: "binary", description: "a tar archive" },
  download: { contentType: "application/x-tar" },
  errors: ["ACC_NOT_FOUND", "ACC_INVALID"],
  // Backups hold the instance's secrets: admin, or the instance's own token.
  permission: "change",
  instanceToken: true,
  async run(call, input) {
    const { openBackupArchive } = await import("../services/backup-archive.js");
    return openBackupArchive(call.ctx, input.name, input.backup);
  },
};
