import { AccError } from "../lib/errors.js";
import type { PruneResult } from "../services/code-prune.js";
import type { ModelInfo } from "../services/models.js";
import { flag, type Command, type CommandResult } from "../cli/command.js";
import { table } from "../cli/output.js";
import { callOperation } from "./cli.js";
import type { Operation } from "./types.js";

/** Sizes as a sysadmin reads them: 1 decimal below 10, none above. */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function renderPrune(result: PruneResult): string {
  const verb = result.dry_run ? "would remove" : "removed";
  const lines = result.removed.map(
    (f) =>
      `${verb} ${f.folder} (${formatBytes(f.bytes)}${f.why === "unfinished" ? ", an unfinished copy" : ""})`,
  );
  const inUse = `${result.kept} in use kept`;
  lines.push(
    result.removed.length === 0
      ? `no code folder to remove (${inUse})`
      : `${result.dry_run ? "would free" : "freed"} ${formatBytes(result.freed_bytes)} (${inUse})`,
  );
  return lines.join("\n");
}

/** A model as `acc models` and `model.show` give it (its parameters aside). */
const MODEL_PROPERTIES = {
  name: { type: "string" },
  version: { type: "string" },
  description: { type: "string" },
  source: { type: "string" },
  dir: { type: "string" },
  overrides: { type: "boolean" },
  error: { type: "string", description: "why its manifest is not valid" },
};

/** A model as `acc models` lists it: with how many instances run each of its versions. */
export type ModelListed = ModelInfo & { instances: Record<string, number> };

export const modelListOperation: Operation<Record<string, never>, ModelListed[]> = {
  id: "model.list",
  summary:
    "List the models: bundled ones and the home's own (HOME/models), with any manifest error.",
  method: "GET",
  path: "/models",
  input: { type: "object", properties: {}, additionalProperties: false },
  output: {
    type: "array",
    items: {
      type: "object",
      required: ["name", "source", "dir", "overrides"],
      properties: {
        ...MODEL_PROPERTIES,
        params: { type: "array", description: "the parameters it declares (the create form)" },
        instances: {
          type: "object",
          additionalProperties: { type: "integer" },
          description: "how many instances run each version of it, by version",
        },
      },
    },
  },
  errors: [],
  permission: "read",
  async run(call) {
    const byModel = new Map<string, Record<string, number>>();
    for (const i of await call.ctx.store.listInstanceActivity()) {
      const versions = byModel.get(i.model) ?? {};
      versions[i.modelVersion] = (versions[i.modelVersion] ?? 0) + 1;
      byModel.set(i.model, versions);
    }
    return (await call.ctx.models.list()).map((m) => ({
      ...m,
      instances: byModel.get(m.name) ?? {},
    }));
  },
};

/** "3 on 1.1.0, 2 on 1.0.0": the current version first, then the others, most instances first. */
export function describeInstanceVersions(
  instances: Readonly<Record<string, number>>,
  current: string | undefined,
): string {
  const entries = Object.entries(instances).sort(
    ([a, x], [b, y]) => Number(b === current) - Number(a === current) || y - x,
  );
  return entries.length === 0 ? "-" : entries.map(([v, n]) => `${n} on ${v}`).join(", ");
}

/** One parameter of a model, as the create form asks it. */
export interface ModelParamJson {
  name: string;
  type: string;
  required: boolean;
  default?: string;
  /** Stored only in the instance's 0600 env file; a password not given is generated. */
  secret: boolean;
  description?: string;
}

export interface ModelShown extends ModelInfo {
  /** In the manifest's order; empty when the manifest has an error. */
  params: ModelParamJson[];
}

export const modelShowOperation: Operation<{ name: string }, ModelShown> = {
  id: "model.show",
  summary:
    "Show one model: its version, its declared parameters (the create form) or its manifest error.",
  method: "GET",
  path: "/models/{name}",
  input: {
    type: "object",
    properties: { name: { type: "string", maxLength: 200, description: "the model's name" } },
    required: ["name"],
    additionalProperties: false,
  },
  output: {
    type: "object",
    required: ["name", "source", "dir", "overrides", "params"],
    properties: {
      ...MODEL_PROPERTIES,
      params: {
        type: "array",
        items: {
          type: "object",
          required: ["name", "type", "required", "secret"],
          properties: {
            name: { type: "string" },
            type: { type: "string", enum: ["string", "int", "bool", "email", "password"] },
            required: { type: "boolean" },
            default: { type: "string" },
            secret: { type: "boolean" },
            description: { type: "string" },
          },
        },
      },
    },
  },
  errors: ["ACC_NOT_FOUND", "ACC_INVALID"],
  permission: "read",
  async run(call, input) {
    const { showValue, validateModelName } = await import("../core/validate.js");
    const name = validateModelName(input.name);
    const info = (await call.ctx.models.list()).find((m) => m.name === name);
    if (info === undefined) {
      throw new AccError("ACC_NOT_FOUND", `no model named ${showValue(input.name)}`, {
        hint: "acc models lists them",
      });
    }
    if (info.error !== undefined) return { ...info, params: [] };
    const { manifest } = await call.ctx.models.get(name);
    const params = Object.entries(manifest.params).map(([name, spec]) => ({
      name,
      type: spec.type,
      required: spec.required,
      ...(spec.default !== undefined ? { default: spec.default } : {}),
      secret: spec.secret,
      ...(spec.description !== undefined ? { description: spec.description } : {}),
    }));
    return { ...info, params };
  },
};

export const modelPruneOperation: Operation<{ dry_run?: boolean }, PruneResult> = {
  id: "model.prune",
  summary: "Remove the code folders (HOME/code) no instance uses; say what and the space freed.",
  method: "POST",
  path: "/models/prune",
  input: {
    type: "object",
    properties: {
      dry_run: { type: "boolean", description: "say what would be removed, remove nothing" },
    },
    additionalProperties: false,
  },
  output: {
    type: "object",
    required: ["dry_run", "removed", "freed_bytes", "kept"],
    properties: {
      dry_run: { type: "boolean" },
      removed: { type: "array" },
      freed_bytes: { type: "integer" },
      kept: { type: "integer" },
    },
  },
  errors: [],
  permission: "change",
  async run(call, input) {
    const { pruneCode } = await import("../services/code-prune.js");
    return pruneCode(call.ctx, { dryRun: input.dry_run === true });
  },
};

/** `acc models` lists (model.list); `acc models prune` prunes (model.prune). */
export const modelsCommand: Command = {
  name: "models",
  summary:
    "List the models: bundled ones and the home's own (HOME/models), with any manifest error; `acc models prune` removes code folders no instance uses.",
  usage: "[prune [--dry-run]]",
  help: [
    "prune               remove the code folders (HOME/code) no instance uses; print them and the space freed",
    "--dry-run           with prune: say what would be removed, remove nothing",
  ],
  options: { "dry-run": { type: "boolean" } },
  positionals: { min: 0, max: 1, names: "prune" },
  json: true,
  operation: "model.list",
  async run(args, cli): Promise<CommandResult> {
    const action = args.positionals[0];
    if (action !== undefined && action !== "prune") {
      throw new AccError("ACC_USAGE", `acc models: unknown action ${JSON.stringify(action)}`, {
        hint: "usage: acc models [prune [--dry-run]]",
      });
    }
    if (action === undefined && flag(args, "dry-run")) {
      throw new AccError("ACC_USAGE", "acc models: --dry-run goes with prune", {
        hint: "acc models prune --dry-run",
      });
    }
    if (action === "prune") {
      const input = flag(args, "dry-run") ? { dry_run: true } : {};
      const { output, raw } = await callOperation(cli, modelPruneOperation, input);
      const result = output as PruneResult;
      return {
        data: result,
        ...(raw !== undefined ? { raw } : {}),
        text: () => renderPrune(result),
      };
    }
    const { output, raw } = await callOperation(cli, modelListOperation, {});
    const models = output as ModelListed[];
    const broken = models.filter((m) => m.error !== undefined);
    const text = table(
      ["MODEL", "VERSION", "SOURCE", "INSTANCES", "DESCRIPTION"],
      models.map((m) => [
        m.name,
        m.version ?? "-",
        m.source,
        describeInstanceVersions(m.instances, m.version),
        m.error !== undefined ? `ERROR ${m.error}` : (m.description ?? ""),
      ]),
    );
    return {
      data: models,
      ...(raw !== undefined ? { raw } : {}),
      text,
      exitCode: broken.length > 0 ? 1 : 0,
    };
  },
};
