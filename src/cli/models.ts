import { AccError } from "../lib/errors.js";
import { pruneCode, type PruneResult } from "../services/code-prune.js";
import { flag, type Command, type CommandResult } from "./command.js";
import { table } from "./output.js";

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
    const ctx = await cli.open();
    if (action === "prune") {
      const result = await pruneCode(ctx, { dryRun: flag(args, "dry-run") });
      return { data: result, text: () => renderPrune(result) };
    }
    const models = await ctx.models.list();
    const broken = models.filter((m) => m.error !== undefined);
    const text = table(
      ["MODEL", "VERSION", "SOURCE", "DESCRIPTION"],
      models.map((m) => [
        m.name,
        m.version ?? "-",
        m.source,
        m.error !== undefined ? `ERROR ${m.error}` : (m.description ?? ""),
      ]),
    );
    return { data: models, text, exitCode: broken.length > 0 ? 1 : 0 };
  },
};
