// Model versions and acc upgrade, for the upgrade tests.
import assert from "node:assert/strict";
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { UpgradeReport } from "../../src/services/upgrades.js";
import type { AccHome } from "./acc.js";
import { accOk, FIXTURE_MODELS, runAcc } from "./attacker.js";

/** acc's bundled models. */
export const ACC_MODELS = path.resolve(FIXTURE_MODELS, "../../../models");

/**
 * Makes HOME/models/NAME a copy of a model folder, its model.toml passed through edit: the
 * home's current version of that model (instances made before keep theirs).
 */
export async function putModel(
  acc: AccHome,
  name: string,
  from: string,
  edit: (toml: string) => string = (toml) => toml,
): Promise<void> {
  const dir = path.join(acc.home, "models", name);
  await rm(dir, { recursive: true, force: true });
  await cp(from, dir, {
    recursive: true,
    filter: (src) => !src.split(path.sep).includes("node_modules"),
  });
  const toml = path.join(dir, "model.toml");
  await writeFile(toml, edit(await readFile(toml, "utf8")));
}

export function withVersion(version: string, extra = ""): (toml: string) => string {
  return (toml) => `${toml.replace(/^version = .*$/m, `version = "${version}"`)}\n${extra}\n`;
}

export async function upgrade(
  acc: AccHome,
  args: string[],
  expectedCode = 0,
): Promise<UpgradeReport> {
  const run = await runAcc(acc, ["upgrade", ...args, "--json"], { timeoutMs: 300_000 });
  assert.equal(run.code, expectedCode, `acc upgrade ${args.join(" ")}: ${run.stdout}${run.stderr}`);
  return JSON.parse(run.stdout) as UpgradeReport;
}

export interface Shown {
  name: string;
  state: string;
  model_version: string;
  params: Record<string, string>;
}

export async function show(acc: AccHome, name: string): Promise<Shown> {
  return JSON.parse(await accOk(acc, ["show", name, "--json"])) as Shown;
}
