import { flag, listOption, positional, stringOption, type ParsedArgs } from "../cli/command.js";
import { formatDuration } from "../core/duration.js";
import { validateInstanceName } from "../core/validate.js";
import { AccError } from "../lib/errors.js";
import type { InstanceJson } from "../services/instance-view.js";
import type { UpgradeItem, UpgradeReport } from "../services/upgrades.js";
import { INSTANCE, NAME, NAME_INPUT } from "./schemas.js";
import type { Operation } from "./types.js";

export interface UpgradeInput {
  names?: string[];
  model?: string;
  batch?: number;
  max_failures?: number;
  dry_run?: boolean;
  verify?: boolean;
  params?: string[];
}

const OUTCOMES = [
  "upgraded",
  "rolled_back",
  "failed",
  "skipped",
  "would_upgrade",
  "not_started",
] as const;

const STEP_NAMES = ["code", "stop", "backup", "render", "command", "verify", "rollback"] as const;

const UPGRADE_ITEM = {
  type: "object",
  required: ["name", "model", "from", "to", "outcome"],
  properties: {
    name: NAME,
    model: { type: "string" },
    from: { type: "string", description: "the model version it was on" },
    to: { type: "string", description: "the model version it goes to" },
    outcome: { type: "string", enum: OUTCOMES },
    reason: { type: "string", description: "why it was skipped, rolled back or not started" },
    log: { type: "string", description: "after a rollback: the last lines of the failed step" },
    params_added: { type: "array", items: { type: "string" } },
    params_dropped: { type: "array", items: { type: "string" } },
    params_generated: {
      type: "array",
      items: { type: "string" },
      description: "secret parameters generated (their values are in its env file)",
    },
    diff: { type: "string", description: "dry run: the config templates' unified diff" },
    env_changes: {
      type: "array",
      items: { type: "string" },
      description: "dry run: environment variables added (+), removed (-) or changed (~)",
    },
    backup: { type: "string", description: "the pre-upgrade backup's folder" },
    duration_ms: { type: "integer" },
    steps: {
      type: "object",
      properties: Object.fromEntries(STEP_NAMES.map((s) => [s, { type: "integer" }])),
      description: "how long each step took, in ms",
    },
  },
};

/** --batch and --max-failures: whole numbers from 1 to max (the API's schema says the same). */
function countOption(args: ParsedArgs, key: string, max: number): number | undefined {
  const text = stringOption(args, key);
  if (text === undefined) return undefined;
  const count = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (!(count >= 1 && count <= max)) {
    throw new AccError("ACC_USAGE", `acc upgrade: invalid --${key} ${JSON.stringify(text)}`, {
      hint: `--${key} takes a whole number from 1 to ${max}`,
    });
  }
  return count;
}

/** The most instances upgraded at once. */
const MAX_BATCH = 64;
const MAX_FAILURES = 100_000;

const OUTCOME_WORDS: Record<UpgradeItem["outcome"], string> = {
  upgraded: "upgraded",
  rolled_back: "ROLLED BACK",
  failed: "FAILED",
  skipped: "skipped",
  would_upgrade: "would upgrade",
  not_started: "not started",
};

function indent(text: string): string[] {
  return text
    .trimEnd()
    .split("\n")
    .map((line) => `    ${line}`);
}

/** One instance's lines in acc upgrade's answer. */
function renderItem(item: UpgradeItem): string[] {
  const change = `${item.model} ${item.from} -> ${item.to}`;
  const took = item.duration_ms !== undefined ? ` in ${formatDuration(item.duration_ms)}` : "";
  const lines = [
    `${item.name}: ${OUTCOME_WORDS[item.outcome]} (${change})${took}${item.reason !== undefined ? `: ${item.reason}` : ""}`,
  ];
  if (item.params_added !== undefined && item.params_added.length > 0)
    lines.push(`  parameters added: ${item.params_added.join(", ")}`);
  if (item.params_dropped !== undefined && item.params_dropped.length > 0)
    lines.push(`  parameters dropped: ${item.params_dropped.join(", ")}`);
  if (item.params_generated !== undefined && item.params_generated.length > 0)
    lines.push(`  secrets generated: ${item.params_generated.join(", ")} (acc show --secrets)`);
  if (item.env_changes !== undefined && item.env_changes.length > 0)
    lines.push(`  environment: ${item.env_changes.join(" ")}`);
  if (item.diff !== undefined) lines.push("  templates:", ...indent(item.diff));
  if (item.log !== undefined && item.log !== "") lines.push("  last lines:", ...indent(item.log));
  return lines;
}

export function renderUpgrade(report: UpgradeReport): string {
  const lines = report.results.flatMap(renderItem);
  const c = report.counts;
  const summary = report.dry_run
    ? [`${c.would_upgrade} would be upgraded`, `${c.skipped} skipped`]
    : [
        `${c.upgraded} upgraded`,
        `${c.rolled_back} rolled back`,
        ...(c.failed > 0 ? [`${c.failed} failed`] : []),
        `${c.skipped} skipped`,
        ...(c.not_started > 0 ? [`${c.not_started} not started`] : []),
      ];
  if (report.results.length === 0) lines.push("no instance to upgrade");
  lines.push(
    `${report.dry_run ? "dry run: " : ""}${summary.join(", ")} in ${formatDuration(report.duration_ms)}${report.stopped !== null ? `; stopped after ${report.stopped}` : ""}`,
  );
  return lines.join("\n");
}

export const upgradeOperation: Operation<UpgradeInput, UpgradeReport> = {
  id: "instance.upgrade",
  summary:
    "Move instances to their model's current version, in batches, each rolled back wholly if it fails.",
  method: "POST",
  path: "/upgrades",
  input: {
    type: "object",
    properties: {
      names: { type: "array", items: NAME, description: "the instances to upgrade" },
      // No maxLength: the service refuses a bad name with the CLI's words, whatever its length.
      model: {
        type: "string",
        description: "instead of names: every instance of this model not on its current version",
      },
      batch: {
        type: "integer",
        minimum: 1,
        maximum: 64,
        default: 1,
        description: "instances at once",
      },
      max_failures: {
        type: "integer",
        minimum: 1,
        maximum: MAX_FAILURES,
        default: 1,
        description: "stop the rollout after this many instances rolled back",
      },
      dry_run: {
        type: "boolean",
        default: false,
        description: "say what would change, change nothing",
      },
      verify: {
        type: "boolean",
        default: true,
        description:
          "start and stop a stopped instance on its new version (false: its next wake does)",
      },
      params: {
        type: "array",
        items: { type: "string" },
        description:
          "KEY=VALUE for parameters the new version adds (a required one without default)",
      },
    },
    additionalProperties: false,
  },
  output: {
    type: "object",
    required: ["dry_run", "results", "counts", "stopped", "duration_ms"],
    properties: {
      dry_run: { type: "boolean" },
      results: { type: "array", items: UPGRADE_ITEM },
      counts: {
        type: "object",
        properties: Object.fromEntries(OUTCOMES.map((o) => [o, { type: "integer" }])),
      },
      stopped: {
        type: ["string", "null"],
        description: "why the rollout stopped before the end (--max-failures)",
      },
      duration_ms: { type: "integer" },
    },
  },
  errors: ["ACC_NOT_FOUND", "ACC_INVALID", "ACC_MODEL", "ACC_NOT_BOOTED"],
  permission: "change",
  long: true,
  async run(call, input) {
    const { upgradeInstances } = await import("../services/upgrades.js");
    return upgradeInstances(call.ctx, {
      names: input.names ?? [],
      ...(input.model !== undefined ? { model: input.model } : {}),
      batch: input.batch ?? 1,
      maxFailures: input.max_failures ?? 1,
      dryRun: input.dry_run === true,
      verify: input.verify !== false,
      params: input.params ?? [],
    });
  },
  cli: {
    name: "upgrade",
    usage:
      "NAME... | --model M [--batch N] [--max-failures K] [--dry-run] [--no-verify] [--param K=V]...",
    help: [
      "--model M           every instance of model M not on its current version",
      "--batch N           instances upgraded at once (default 1)",
      "--max-failures K    stop the rollout after K instances rolled back (default 1)",
      "--dry-run           say what would change (versions, parameters, templates' diff)",
      "--no-verify         a stopped instance is not started to check it: its next wake runs",
      "                    the new version",
      "--param K=V         a value for a parameter the new version adds (repeatable)",
    ],
    options: {
      model: { type: "string" },
      batch: { type: "string" },
      "max-failures": { type: "string" },
      "dry-run": { type: "boolean" },
      "no-verify": { type: "boolean" },
      param: { type: "string", multiple: true },
    },
    positionals: { min: 0, max: 10_000, names: "NAME..." },
    json: true,
    input(args) {
      // Which instances (names or --model, not both) is checked by the service, for the API too.
      const model = stringOption(args, "model");
      const batch = countOption(args, "batch", MAX_BATCH);
      const maxFailures = countOption(args, "max-failures", MAX_FAILURES);
      return {
        names: args.positionals,
        ...(model !== undefined ? { model } : {}),
        ...(batch !== undefined ? { batch } : {}),
        ...(maxFailures !== undefined ? { max_failures: maxFailures } : {}),
        ...(flag(args, "dry-run") ? { dry_run: true } : {}),
        ...(flag(args, "no-verify") ? { verify: false } : {}),
        params: listOption(args, "param"),
      };
    },
    render: (report) => ({
      text: () => renderUpgrade(report),
      // Something rolled back or failed: the rollout did not do all it was asked.
      ...(report.counts.rolled_back + report.counts.failed > 0 ? { exitCode: 1 } : {}),
    }),
  },
};

interface RollbackOutput extends InstanceJson {
  rolled_back: { from: string; to: string; backup: string };
}

export const rollbackOperation: Operation<{ name: string }, RollbackOutput> = {
  id: "instance.rollback",
  summary:
    "Put an instance back on the version before its last upgrade, with its files and database from the pre-upgrade backup.",
  method: "POST",
  path: "/instances/{name}/rollback",
  input: NAME_INPUT,
  output: {
    allOf: [
      INSTANCE,
      {
        type: "object",
        required: ["rolled_back"],
        properties: {
          rolled_back: {
            type: "object",
            required: ["from", "to", "backup"],
            properties: {
              from: { type: "string" },
              to: { type: "string" },
              backup: {
                type: "string",
                description: "a backup of what it had before the rollback",
              },
            },
          },
        },
      },
    ],
  },
  errors: ["ACC_NOT_FOUND", "ACC_BUSY", "ACC_STATE", "ACC_START_FAILED", "ACC_NOT_BOOTED"],
  permission: "change",
  long: true,
  async run(call, input) {
    const { rollbackInstance } = await import("../services/upgrades.js");
    const { instanceJson } = await import("../services/instance-view.js");
    const result = await rollbackInstance(call.ctx, validateInstanceName(input.name));
    return {
      ...instanceJson(call.ctx, result.instance),
      rolled_back: { from: result.from, to: result.to, backup: result.backup },
    };
  },
  cli: {
    name: "rollback",
    usage: "NAME",
    help: [],
    options: {},
    positionals: { min: 1, max: 1, names: "NAME" },
    json: true,
    input: (args) => ({ name: validateInstanceName(positional(args, 0)) }),
    render: (view) => ({
      text: [
        `${view.name} rolled back from ${view.model} ${view.rolled_back.from} to ${view.rolled_back.to} (${view.state})`,
        `what it had before the rollback is in the backup ${view.rolled_back.backup}`,
      ].join("\n"),
    }),
  },
};
