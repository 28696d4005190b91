// The journal of an instance's upgrade (upgrades.ts), and the rollback that an interrupted one
// gets from whoever finds it: the instance's next start, its next upgrade, acc doctor.
import { rm } from "node:fs/promises";
import { databaseEnvOf } from "../core/instance-env.js";
import { instancePaths } from "../core/paths.js";
import type { InstanceState } from "../core/states.js";
import { AccError } from "../lib/errors.js";
import { readFileIfExists, writeFileAtomic } from "../lib/files.js";
import { holderAlive, processIdentity, type InstanceRecord } from "../store/store.js";
import { backupEnv, openBackup } from "./backups.js";
import { killCgroup, stopProcesses } from "./cgroups.js";
import type { AccContext } from "./context.js";
import { dataOwner } from "./instance-data.js";
import {
  paramValuesOf,
  removeStaleTemplates,
  writeInstanceFiles,
  writeInstanceProgram,
} from "./instance-files.js";
import { pinnedModel, requestTimeoutOf, siteOf } from "./model-code.js";
import { restoreInto } from "./restores.js";

/** A model version an instance runs, with its public parameters (secret ones are in its env). */
export interface VersionPin {
  version: string;
  hash: string;
  params: Record<string, string>;
}

export interface UpgradeJournal {
  instance: string;
  model: string;
  from: VersionPin;
  to: VersionPin;
  /** Its state before the upgrade, given back by a rollback. */
  state: InstanceState;
  /** The pre-upgrade backup's folder. */
  backup: string;
  /**
   * changing: being moved (found by anyone else, it is rolled back); committed: on the new
   * version (the record acc rollback reads); rolling-back: on its way back to `from`.
   */
  phase: "changing" | "committed" | "rolling-back";
  /** Instance code ran on the new version: a rollback restores data/ and the database. */
  ranCode: boolean;
  params_added: string[];
  params_dropped: string[];
  started_at: string;
  finished_at?: string;
  /** The process upgrading (pid:start-time, as a lease's holder). */
  holder: string;
}

/** Instances this process is upgrading or rolling back right now (their journal is its own). */
const underWayHere = new Set<string>();

/** Marks the instance's upgrade or rollback as this process's, under way; returns the unmark. */
export function markUnderWay(name: string): () => void {
  underWayHere.add(name);
  return () => underWayHere.delete(name);
}

export async function readUpgradeJournal(
  ctx: AccContext,
  name: string,
): Promise<UpgradeJournal | undefined> {
  // HOME/instances/NAME is root's: the instance cannot have put a link there.
  const text = await readFileIfExists(instancePaths(ctx.home, name).upgrade);
  return text === undefined ? undefined : (JSON.parse(text) as UpgradeJournal);
}

export async function writeUpgradeJournal(ctx: AccContext, journal: UpgradeJournal): Promise<void> {
  await writeFileAtomic(
    instancePaths(ctx.home, journal.instance).upgrade,
    `${JSON.stringify(journal, null, 2)}\n`,
    { mode: 0o600 },
  );
}

/** Whether a live process is upgrading (or rolling back) the instance of this journal now. */
export function upgradeUnderWay(journal: UpgradeJournal): boolean {
  if (journal.holder === processIdentity(process.pid)) return underWayHere.has(journal.instance);
  return holderAlive(journal.holder);
}

/** The upgrade journals of these instances, for those that have one. */
export async function upgradeJournals(
  ctx: AccContext,
  names: readonly string[],
): Promise<{ name: string; journal: UpgradeJournal }[]> {
  const out: { name: string; journal: UpgradeJournal }[] = [];
  for (const name of names) {
    const journal = await readUpgradeJournal(ctx, name);
    if (journal) out.push({ name, journal });
  }
  return out;
}

/** Upgrades killed half-way: their journal says "changing" or "rolling-back". */
export async function interruptedUpgrades(
  ctx: AccContext,
): Promise<{ name: string; journal: UpgradeJournal }[]> {
  const names = (await ctx.store.listInstances()).map((i) => i.name);
  return (await upgradeJournals(ctx, names)).filter(({ journal }) => journal.phase !== "committed");
}

/**
 * Rolls back the interrupted upgrade of an instance, if there is one (the caller holds its
 * lease, or knows its holder died). The instance is left stopped (or suspended, or failed, as
 * before): it wakes on its next request. Returns the journal it settled.
 */
export async function settleUpgrade(
  ctx: AccContext,
  name: string,
): Promise<UpgradeJournal | undefined> {
  const journal = await readUpgradeJournal(ctx, name);
  if (journal === undefined || journal.phase === "committed" || upgradeUnderWay(journal)) {
    return undefined;
  }
  const instance = await ctx.store.getInstance(name);
  if (instance === undefined) {
    await rm(instancePaths(ctx.home, name).upgrade, { force: true });
    return journal;
  }
  const started = Date.now();
  const done = markUnderWay(name);
  try {
    await rollBack(ctx, instance, journal);
  } finally {
    done();
  }
  const state =
    journal.state === "suspended" || journal.state === "failed" ? journal.state : "stopped";
  await ctx.store.updateInstance(name, { state, operation: null }, ctx.now().toISOString());
  await ctx.store.addEvent(
    {
      instance: name,
      action: "rollback",
      outcome: "ok",
      cause: "recovery",
      durationMs: Date.now() - started,
      message: `an interrupted upgrade to ${journal.to.version} was rolled back to ${journal.from.version}`,
    },
    ctx.now().toISOString(),
  );
  return journal;
}

/**
 * Puts the instance back on journal.from: its processes stopped, the store, env, templates,
 * launch spec and program of the old version, and when instance code ran since the backup,
 * data/ and the database from it. Leaves it stopped (state "stopped" in the store) and removes
 * the journal. Idempotent: a crash anywhere in it is finished by running it again.
 */
export async function rollBack(
  ctx: AccContext,
  instance: InstanceRecord,
  journal: UpgradeJournal,
): Promise<void> {
  const name = instance.name;
  // The journal becomes this process's: killed now, the rollback is anyone's to finish (a
  // committed journal's holder is the upgrade's process, which may live on: acc server).
  const holder = processIdentity(process.pid) ?? String(process.pid);
  if (journal.phase !== "rolling-back" || journal.holder !== holder) {
    journal.phase = "rolling-back";
    journal.holder = holder;
    await writeUpgradeJournal(ctx, journal);
  }
  ctx.progress.step(`${name}: rolling back to ${journal.model} ${journal.from.version}`);
  // Whatever runs of the new version goes first: the app, its upgrade step, their children.
  if (await ctx.processes.isRunning()) await stopProcesses(ctx, name);
  else await killCgroup(ctx, name);
  const old = await pinnedModel(ctx, { model: journal.model, ...journal.from });
  if (old === undefined) {
    throw new AccError(
      "ACC_FAILED",
      `cannot roll ${name} back: the code folder of ${journal.model} ${journal.from.version} is gone`,
      { hint: `put that version back in HOME/models/${journal.model}, then acc doctor --repair` },
    );
  }
  const backup = await openBackup(ctx, journal.backup);
  const env = await backupEnv(ctx, backup);
  const ids = await dataOwner(ctx, name);
  await ctx.store.updateInstance(
    name,
    { model: journal.from, state: "stopped", operation: "rollback" },
    ctx.now().toISOString(),
  );
  Object.assign(instance, {
    modelVersion: journal.from.version,
    modelHash: journal.from.hash,
    params: journal.from.params,
    state: "stopped",
  });
  await writeInstanceFiles(
    ctx,
    instance,
    old,
    paramValuesOf(old.manifest, journal.from.params, env),
    old.dir,
    ids,
    instance.database !== null ? databaseEnvOf(env) : {},
  );
  await writeInstanceProgram(ctx, name, old.manifest, old.dir);
  const upgraded = await pinnedModel(ctx, { model: journal.model, ...journal.to });
  await removeStaleTemplates(ctx, name, old.manifest, upgraded?.manifest);
  // nginx is reloaded only when the request timeout differs (at 10,000 sites a reload costs).
  if (
    upgraded === undefined ||
    requestTimeoutOf(ctx, upgraded.manifest) !== requestTimeoutOf(ctx, old.manifest)
  ) {
    await ctx.proxy.applySite(siteOf(ctx, instance, old.manifest));
  }
  if (journal.ranCode) await restoreInto(ctx, instance, backup, ids);
  await rm(instancePaths(ctx.home, name).upgrade, { force: true });
}
