import { AccError } from "../lib/errors.js";
import type { Command } from "./command.js";
import { completeCommand, completionCommand } from "./completion.js";
import { createCommand } from "./create.js";
import { doctorCommand } from "./doctor.js";
import { exitListenerCommand } from "./exit-listener.js";
import { serverCommand } from "./server.js";
import { backupCommand, backupsCommand, dbCommand, restoreCommand } from "./backups.js";
import { eventsCommand } from "./events.js";
import { monitorCommand } from "./monitor.js";
import { resumeCommand, setCommand, suspendCommand } from "./instance-settings.js";
import { destroyCommand, restartCommand, startCommand, stopCommand } from "./lifecycle.js";
import { listCommand, showCommand } from "./list.js";
import { logsCommand } from "./logs.js";
import { modelsCommand } from "./models.js";
import { didYouMean } from "./suggest.js";
import { bootCommand, initCommand, shutdownCommand, statusCommand } from "./system.js";

/** Every command, in the order `acc help` lists them. */
export const COMMANDS: readonly Command[] = [
  initCommand,
  bootCommand,
  shutdownCommand,
  statusCommand,
  modelsCommand,
  createCommand,
  listCommand,
  showCommand,
  startCommand,
  stopCommand,
  restartCommand,
  destroyCommand,
  logsCommand,
  setCommand,
  suspendCommand,
  resumeCommand,
  eventsCommand,
  monitorCommand,
  backupCommand,
  backupsCommand,
  restoreCommand,
  dbCommand,
  doctorCommand,
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
    "  --version     print acc's version",
    "",
    "exit codes: 0 ok, 1 the operation failed, 2 bad usage or input (nothing changed), 3 no such instance or model",
  ].join("\n");
}
