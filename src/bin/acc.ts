#!/usr/bin/env node
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { commandHelp, parseCommandArgs, type CliEnv } from "../cli/command.js";
import { findCommand, mainHelp, unknownCommand } from "../cli/commands.js";
import { didYouMean } from "../cli/suggest.js";
import { makeStyle, useColor } from "../cli/output.js";
import { escapeUntrusted } from "../core/untrusted-text.js";
import { AccError, exitCodeFor } from "../lib/errors.js";
import type { AccContext } from "../services/context.js";
import { homePaths } from "../core/paths.js";
import { resolveHome } from "../lib/home.js";
import { apiClient, type ApiClient } from "../cli/client.js";

/** The package root, where models/ and package.json live: above dist/acc.mjs or dist/src/bin/acc.js. */
function findAccRoot(start: string): string {
  for (let dir = start; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json")) && existsSync(path.join(dir, "models")))
      return dir;
  }
  throw new Error(`cannot find acc's package folder above ${start}`);
}

const accRoot = findAccRoot(path.dirname(fileURLToPath(import.meta.url)));

const GLOBAL_OPTIONS = ["home", "url", "token", "version", "help"];

interface Global {
  home: string | undefined;
  url: string | undefined;
  token: string | undefined;
  rest: string[];
  version: boolean;
  help: boolean;
}

function parseGlobal(argv: string[]): Global {
  const global: Global = {
    home: undefined,
    url: undefined,
    token: undefined,
    rest: [],
    version: false,
    help: false,
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--home") {
      const value = argv[++i];
      if (value === undefined) throw new AccError("ACC_USAGE", "--home needs a folder");
      global.home = value;
    } else if (arg.startsWith("--home=")) global.home = arg.slice(7);
    else if (arg === "--url" || arg === "--token") {
      const value = argv[++i];
      if (value === undefined) throw new AccError("ACC_USAGE", `${arg} needs a value`);
      global[arg === "--url" ? "url" : "token"] = value;
    } else if (arg.startsWith("--url=")) global.url = arg.slice(6);
    else if (arg.startsWith("--token=")) global.token = arg.slice(8);
    else if (arg === "--version") global.version = true;
    else if (arg === "-h" || arg === "--help") global.help = true;
    else if (arg.startsWith("-"))
      throw new AccError("ACC_USAGE", `unknown option ${JSON.stringify(arg)}`, {
        hint: didYouMean(arg.replace(/=.*$/, ""), GLOBAL_OPTIONS, "--") ?? "acc help",
      });
    else break;
  }
  global.rest = argv.slice(i);
  return global;
}

function printError(error: unknown, color: boolean): void {
  const style = makeStyle(color);
  if (error instanceof AccError) {
    const hint = error.hint ? ` ${style.dim(`(${error.hint})`)}` : "";
    process.stderr.write(`${style.red("acc:")} ${error.message}${hint}\n`);
    if (error.details) process.stderr.write(`${error.details.replace(/^/gm, "  | ")}\n`);
    return;
  }
  process.stderr.write(
    `${style.red("acc: internal error (this is a bug):")} ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
}

async function main(argv: string[]): Promise<number> {
  // What acc creates is its own unless it says otherwise (code folders, instances' files):
  // the store, logs, backups and dumps hold every instance's data.
  process.umask(0o077);
  const color = useColor(process.env, process.stderr.isTTY === true);
  let ctx: AccContext | undefined;
  try {
    const global = parseGlobal(argv);
    const pkg = JSON.parse(readFileSync(path.join(accRoot, "package.json"), "utf8")) as {
      version: string;
    };
    if (global.version) {
      process.stdout.write(`acc ${pkg.version}\n`);
      return 0;
    }
    const [name, ...args] = global.rest;
    if (name === undefined || global.help || name === "help") {
      const topic = name === "help" ? args[0] : undefined;
      const command = topic === undefined ? undefined : findCommand(topic);
      if (topic !== undefined && !command) throw unknownCommand(topic);
      process.stdout.write(`${command ? commandHelp(command) : mainHelp()}\n`);
      return name === undefined && !global.help ? 2 : 0;
    }
    const command = findCommand(name);
    if (!command) throw unknownCommand(name);
    const parsed = parseCommandArgs(command, args);
    if (parsed.values.help === true) {
      process.stdout.write(`${commandHelp(command)}\n`);
      return 0;
    }
    const json = parsed.values.json === true;
    const home = resolveHome(global.home, process.env);
    // ACC_URL is an instance's own public URL (instances get it): the API's is ACC_API_URL.
    const url = global.url ?? (process.env.ACC_API_URL || undefined);
    const token = global.token ?? (process.env.ACC_API_TOKEN || undefined);
    if (url !== undefined && command.operation === undefined) {
      throw new AccError(
        "ACC_USAGE",
        `acc ${command.name} works on this machine only, not through --url`,
        {
          hint: "run it on the server, without --url and ACC_API_URL",
        },
      );
    }
    let api: ApiClient | undefined;
    const progressOn = process.stderr.isTTY === true && !json;
    const style = makeStyle(color);
    const cli: CliEnv = {
      home,
      env: process.env,
      accRoot,
      json,
      interactive: process.stdin.isTTY === true && process.stdout.isTTY === true,
      showsProgress: progressOn,
      progress: {
        step: (text) =>
          progressOn && process.stderr.write(`${style.dim(`… ${text}`)}\n`) && undefined,
        output: (text) =>
          progressOn &&
          process.stderr.write(escapeUntrusted(text, { keepLines: true })) &&
          undefined,
      },
      open: async () => {
        // Loaded on demand: a command answered through the API never loads services/.
        const { openContext } = await import("../services/open.js");
        ctx ??= await openContext({ home, env: process.env, accRoot, progress: cli.progress });
        return ctx;
      },
      api: () => (api ??= apiClient({ url, token, socketPath: homePaths(home).apiSocket })),
      remote: url !== undefined,
      confirm: async (question) => {
        const { createInterface } = await import("node:readline/promises");
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        try {
          return /^y(es)?$/i.test((await rl.question(question)).trim());
        } finally {
          rl.close();
        }
      },
      write: (text) => process.stdout.write(text) && undefined,
      ...(json && process.stdout.isTTY !== true ? { jsonOut: process.stdout } : {}),
    };
    const result = await command.run(parsed, cli);
    // Indented for a person at a terminal; compact for scripts (10,000 instances: ~40% faster).
    if (result.printed === true) {
      // Written as it came from the API.
    } else if (json) {
      const indent = process.stdout.isTTY === true ? 2 : undefined;
      // The API's answer is this very JSON already: printed as it came (10,000 instances).
      process.stdout.write(
        `${result.raw !== undefined && indent === undefined ? result.raw : JSON.stringify(result.data, null, indent)}\n`,
      );
    } else {
      const text = typeof result.text === "function" ? result.text() : result.text;
      if (text) process.stdout.write(`${text}\n`);
    }
    return result.exitCode ?? 0;
  } catch (error) {
    printError(error, color);
    return exitCodeFor(error);
  } finally {
    await ctx?.store.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
