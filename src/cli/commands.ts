import { AccError } from "../lib/errors.js";
import type { Command } from "./command.js";
import { dbCommand } from "./db.js";
import { exitListenerCommand } from "./exit-listener.js";
import { serverCommand } from "./server.js";
import { bootCommand, initCommand, shutdownCommand } from "./system.js";
import { commandFromOperation } from "../operations/cli.js";
import { backupOperation, backupsOperation, restoreOperation } from "../operations/backups.js";
import { rollbackOperation, upgradeOperation } from "../operations/upgrades.js";
import { eventsOperation } from "../operations/events.js";
import { createOperation } from "../operations/instance-create.js";
import {
  destroyOperation,
  restartOperation,
  resumeOperation,
  startOperation,
  stopOperation,
  suspendOperation,
} from "../operations/instance-lifecycle.js";
import { listOperation, showOperation } from "../operations/instance-read.js";
import { setOperation } from "../operations/instance-set.js";
import { logsOperation } from "../operations/logs.js";
import { hostCommand } from "../operations/hosts.js";
import { modelsCommand } from "../operations/models.js";
import { tokenCommand } from "../operations/tokens.js";
import { tlsCommand } from "../operations/tls.js";
import { doctorOperation, monitorOperation, statusOperation } from "../operations/system.js";
import { completeCommand, completionCommand } from "./completion.js";
import { didYouMean } from "./suggest.js";

/** Every command, in the order `acc help` lists them. */
export const COMMANDS: readonly Command[] = [
  initCommand,
  bootCommand,
  shutdownCommand,
  commandFromOperation(statusOperation),
  modelsCommand,
  commandFromOperation(createOperation),
  commandFromOperation(listOperation),
  commandFromOperation(showOperation),
  commandFromOperation(startOperation),
  commandFromOperation(stopOperation),
  commandFromOperation(restartOperation),
  commandFromOperation(destroyOperation),
  commandFromOperation(logsOperation),
  commandFromOperation(setOperation),
  hostCommand,
  tlsCommand,
  commandFromOperation(suspendOperation),
  commandFromOperation(resumeOperation),
  commandFromOperation(eventsOperation),
  commandFromOperation(monitorOperation),
  commandFromOperation(backupOperation),
  commandFromOperation(backupsOperation),
  commandFromOperation(restoreOperation),
  commandFromOperation(upgradeOperation),
  commandFromOperation(rollbackOperation),
  dbCommand,
  commandFromOperation(doctorOperation),
  tokenCommand,
  completionCommand,
  serverCommand,
  exitListenerCommand,
  completeCommand,
];
export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((command) => command.name === name);
}

/** An unknown command: a usage error that names it and, when one is close, what was meant. */
export function unknownCommand(name: string): AccError {
  const known = [...COMMANDS.filter((c) => c.hidden !== true).map((c) => c.name), "help"];
  return new AccError("ACC_USAGE", `unknown command ${JSON.stringify(name)}`, {
    hint: didYouMean(name, known) ?? "acc help lists them",
  });
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "usage: acc [--home DIR] COMMAND [ARGS...]",
    "",
    "acc runs many web application instances on one server, each behind nginx and under",
    "supervisord, stopped when idle and started again by their next request.",
    "",
    "commands:",
    ...COMMANDS.filter((c) => c.hidden !== true).map(
      (c) => `  ${c.name.padEnd(width)}  ${c.summary.split(". ")[0]?.replace(/\.$/, "") ?? ""}`,
    ),
    `  ${"help".padEnd(width)}  Show help for a command: acc help COMMAND`,
    "",
    "global options:",
    "  --home DIR    acc's home folder (default $ACC_HOME, /var/lib/acc as root, ~/.acc otherwise)",
    "  --url URL     send the command to acc server's API there (or ACC_API_URL)",
    "  --token T     the API token for --url (or ACC_API_TOKEN)",
    "  --version     print acc's version",
    "",
    "exit codes: 0 ok, 1 the operation failed, 2 bad usage or input (nothing changed), 3 no such instance or model",
  ].join("\n");
}
