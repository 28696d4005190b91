// Upgrades move an instance to its model's current version wholly or not at all: code, config,
// env, files and database. Each instance is upgraded under its lease, in this order:
//   1. the new version's code folder is made (npm install once per version), while it still runs;
//   2. it is stopped, and backed up (files and database: the pre-upgrade backup);
//   3. its journal, HOME/instances/NAME/upgrade.json, says "changing": from here on, whoever
//      finds the journal so (the next start or wake, the next upgrade, acc doctor) rolls it back;
//   4. the store gets the new version and parameters; env, templates, launch spec and supervisord
//      program are written again from the new version;
//   5. the model's [upgrade] command runs as the instance's user, in its sandbox;
//   6. a running instance is started and must pass its health check; a stopped one is started
//      and stopped again (unless --no-verify); a suspended one is suspended again;
//   7. the journal says "committed": the commit point. It stays as the record `acc rollback` reads.
// A failure in 4-6 rolls back: the old version's files written again from its code folder (kept
// while a journal names it), data/ and the database restored from the pre-upgrade backup (through
// restores.ts, itself all or nothing) when instance code ran, the old state given back. Each step
// of a rollback is idempotent, so a crash during one is finished by the next.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { databaseEnvOf, parseEnvFile } from "../core/instance-env.js";
import { unifiedDiff } from "../core/line-diff.js";
import {
  checkParamValue,
  parseParamArgs,
  publicParamsOf,
  resolveParams,
} from "../core/model-params.js";
import { isValidModelName, type ModelManifest } from "../core/model.js";
import { instancePaths } from "../core/paths.js";
import { escapeUntrusted } from "../core/untrusted-text.js";
import { mayBeAlive, SETTLED_STATES, type InstanceState } from "../core/states.js";
import { showValue, validateInstanceName } from "../core/validate.js";
import { AccError, errorMessage, isAccError } from "../lib/errors.js";
import { readFileIfExists } from "../lib/files.js";
import { processIdentity, type InstanceRecord } from "../store/store.js";
import { createBackup, openBackup } from "./backups.js";
import { killCgroup, prepareCgroup } from "./cgroups.js";
import type { AccContext } from "./context.js";
import { dataOwner } from "./instance-data.js";
import {
  paramValuesOf,
  removeStaleTemplates,
  renderInstanceFiles,
  runModelStep,
  writeInstanceFiles,
  writeInstanceProgram,
} from "./instance-files.js";
import {
  causeOf,
  elapsed,
  getInstance,
  lastLogLines,
  lease,
  recordEvent,
  startLocked,
  stopLocked,
} from "./instances.js";
import {
  ensureSharedCode,
  instanceManifest,
  pinnedModel,
  requestTimeoutOf,
  siteOf,
} from "./model-code.js";
import type { LoadedModel } from "./models.js";
import { settleRestore } from "./restores.js";
import { generateSecret } from "./secrets.js";
import {
  markUnderWay,
  readUpgradeJournal,
  rollBack,
  settleUpgrade,
  writeUpgradeJournal,
  type UpgradeJournal,
  type VersionPin,
} from "./upgrade-journal.js";

export interface UpgradeOptions {
  /** The instances to upgrade; or, with `model`, every instance of it not on its version. */
  names: string[];
  model?: string;
  /** Instances at once. */
  batch: number;
  /** The rollout stops after this many instances rolled back. */
  maxFailures: number;
  dryRun: boolean;
  /** A stopped instance is started and stopped again on its new version (--no-verify: not). */
  verify: boolean;
  /** NAME=VALUE for parameters an instance does not have yet (a new required one). */
  params: string[];
}

export type UpgradeOutcome =
  "upgraded" | "rolled_back" | "failed" | "skipped" | "would_upgrade" | "not_started";

/** What became of one instance; the step durations are in ms. */
export interface UpgradeItem {
  name: string;
  model: string;
  from: string;
  to: string;
  outcome: UpgradeOutcome;
  reason?: string;
  /** The last lines of the upgrade step's or the app's log (escaped), after a rollback. */
  log?: string;
  params_added?: string[];
  params_dropped?: string[];
  /** Generated secret parameters (names only: the values are in its env file). */
  params_generated?: string[];
  /** --dry-run: the rendered config templates' unified diff (secret values masked). */
  diff?: string;
  /** --dry-run: environment variables the new version adds, removes or changes (names only). */
  env_changes?: string[];
  backup?: string;
  duration_ms?: number;
  steps?: Partial<
    Record<"code" | "stop" | "backup" | "render" | "command" | "verify" | "rollback", number>
  >;
}

export interface UpgradeReport {
  dry_run: boolean;
  results: UpgradeItem[];
  counts: Record<UpgradeOutcome, number>;
  /** Why the rollout stopped before the end (--max-failures), or null. */
  stopped: string | null;
  duration_ms: number;
}

interface Plan {
  instance: InstanceRecord;
  target: LoadedModel;
  oldManifest: ModelManifest;
  /** Every parameter of the new version, secret ones included. */
  values: Record<string, string>;
  publicParams: Record<string, string>;
  added: string[];
  dropped: string[];
  generated: string[];
  /** The instance's env file as it is. */
  env: Record<string, string>;
}

class Skip extends Error {}

/** The version an instance is on, with its hash when only that differs from the target's. */
function versionText(instance: InstanceRecord, target: LoadedModel): string {
  return instance.modelVersion === target.manifest.version && instance.modelHash !== target.hash
    ? `${instance.modelVersion} (${instance.modelHash.slice(0, 12)})`
    : instance.modelVersion;
}

/** What the upgrade of one instance would do; throws Skip with the reason when it may not. */
async function planUpgrade(
  ctx: AccContext,
  instance: InstanceRecord,
  target: LoadedModel,
  given: Readonly<Record<string, string>>,
): Promise<Plan> {
  if (instance.modelHash === target.hash) {
    throw new Skip(`already on ${target.manifest.version}`);
  }
  if (!SETTLED_STATES.has(instance.state)) {
    throw new Skip(`it is ${instance.state} (an operation did not finish: acc doctor says which)`);
  }
  const oldManifest = await instanceManifest(ctx, instance);
  const env = parseEnvFile(await readFile(instancePaths(ctx.home, instance.name).env, "utf8"));
  const current = paramValuesOf(oldManifest, instance.params, env);
  const newParams = target.manifest.params;
  const kept: Record<string, string> = {};
  for (const key of Object.keys(newParams)) {
    const value = Object.hasOwn(oldManifest.params, key) ? current[key] : undefined;
    if (value !== undefined) kept[key] = value;
    else if (Object.hasOwn(given, key)) kept[key] = given[key] as string;
  }
  let resolved;
  try {
    resolved = resolveParams(target.manifest, kept, generateSecret);
  } catch (error) {
    if (!isAccError(error, "ACC_INVALID")) throw error;
    throw new Skip(`${error.message}${error.hint ? ` (${error.hint})` : ""}`);
  }
  return {
    instance,
    target,
    oldManifest,
    values: resolved.values,
    publicParams: publicParamsOf(resolved),
    added: Object.keys(newParams).filter((key) => !Object.hasOwn(oldManifest.params, key)),
    dropped: Object.keys(oldManifest.params).filter((key) => !Object.hasOwn(newParams, key)),
    generated: resolved.generated,
    env,
  };
}

/** The dry run's view: the templates' diff and the env's changed names, secrets masked. */
async function describePlan(
  ctx: AccContext,
  plan: Plan,
): Promise<Pick<UpgradeItem, "diff" | "env_changes">> {
  const { instance, target, env } = plan;
  const rendered = await renderInstanceFiles(
    ctx,
    instance,
    target,
    plan.values,
    instance.database !== null ? databaseEnvOf(env) : {},
  );
  const secrets = [
    ...Object.entries(target.manifest.params)
      .filter(([, spec]) => spec.secret)
      .map(([key]) => plan.values[key] ?? ""),
    ...Object.entries(plan.oldManifest.params)
      .filter(([, spec]) => spec.secret)
      .map(([key]) => env[`PARAM_${key.toUpperCase()}`] ?? ""),
    env.PGPASSWORD ?? "",
  ].filter((value) => value !== "");
  const mask = (text: string): string =>
    secrets.reduce((out, secret) => out.replaceAll(secret, "(secret)"), text);
  const configDir = instancePaths(ctx.home, instance.name).config;
  const targets = new Set([
    ...plan.oldManifest.templates.map((t) => t.target),
    ...rendered.templates.map((t) => t.target),
  ]);
  const diffs: string[] = [];
  for (const target of [...targets].sort()) {
    // The config folder is root's: what is there is what acc wrote.
    const before = (await readFileIfExists(path.join(configDir, target))) ?? "";
    const after = rendered.templates.find((t) => t.target === target)?.text ?? "";
    diffs.push(unifiedDiff(mask(before), mask(after), [`config/${target}`, `config/${target}`]));
  }
  // Shown on a terminal: whatever the templates hold, no escape sequence reaches it.
  const diff = escapeUntrusted(diffs.join(""), { keepLines: true });
  const envChanges: string[] = [];
  for (const key of new Set([...Object.keys(env), ...Object.keys(rendered.env)])) {
    if (!(key in rendered.env)) envChanges.push(`-${key}`);
    else if (!(key in env)) envChanges.push(`+${key}`);
    else if (env[key] !== rendered.env[key]) envChanges.push(`~${key}`);
  }
  return { ...(diff !== "" ? { diff } : {}), env_changes: envChanges.sort() };
}

/**
 * Upgrades one instance under its lease (see the top of this file). Never throws for the
 * instance's own failures: they are rolled back and told in the result.
 */
async function upgradeOne(
  ctx: AccContext,
  name: string,
  target: LoadedModel,
  given: Readonly<Record<string, string>>,
  verify: boolean,
): Promise<UpgradeItem> {
  const started = Date.now();
  const item: UpgradeItem = {
    name,
    model: target.manifest.name,
    from: "?",
    to: target.manifest.version,
    outcome: "skipped",
  };
  try {
    return await lease(ctx, name, "upgrade", async () => {
      // One killed half-way first: never upgraded on top of half of one.
      await settleUpgrade(ctx, name);
      await settleRestore(ctx, name);
      const instance = await getInstance(ctx, name);
      item.from = versionText(instance, target);
      let plan: Plan;
      try {
        plan = await planUpgrade(ctx, instance, target, given);
      } catch (error) {
        if (!(error instanceof Skip)) throw error;
        item.reason = error.message;
        return item;
      }
      return await upgradeLocked(ctx, plan, verify, item, started);
    });
  } catch (error) {
    // Busy, or a rollback that could not finish: told, and the rollout goes on with the others.
    if (isAccError(error, "ACC_BUSY")) {
      item.reason = error.message;
      return item;
    }
    // Before its journal, nothing was changed; after it, the rollback could not finish.
    const journal = await readUpgradeJournal(ctx, name).catch(() => undefined);
    const halfWay = journal !== undefined && journal.phase !== "committed";
    item.outcome = "failed";
    item.reason = `${errorMessage(error)}${halfWay ? " (acc doctor --repair rolls it back)" : " (nothing was changed)"}`;
    item.duration_ms = elapsed(started);
    await recordEvent(ctx, name, "upgrade", "failed", {
      cause: causeOf(ctx),
      durationMs: item.duration_ms,
      message: item.reason,
    }).catch(() => undefined);
    return item;
  }
}

async function upgradeLocked(
  ctx: AccContext,
  plan: Plan,
  verify: boolean,
  item: UpgradeItem,
  started: number,
): Promise<UpgradeItem> {
  const { instance, target } = plan;
  const name = instance.name;
  const steps: NonNullable<UpgradeItem["steps"]> = {};
  const timed = async <T>(step: keyof typeof steps, fn: () => Promise<T>): Promise<T> => {
    const at = Date.now();
    try {
      return await fn();
    } finally {
      steps[step] = (steps[step] ?? 0) + elapsed(at);
    }
  };
  item.params_added = plan.added;
  item.params_dropped = plan.dropped;
  item.params_generated = plan.generated;
  item.steps = steps;
  // While it still runs: copying the model and installing its dependencies may take minutes.
  const codeDir = await timed("code", () => ensureSharedCode(ctx, target));
  const oldState = instance.state;
  const from: VersionPin = {
    version: instance.modelVersion,
    hash: instance.modelHash,
    params: instance.params,
  };
  ctx.progress.step(
    `${name}: upgrading ${target.manifest.name} ${from.version} to ${target.manifest.version}`,
  );
  if (mayBeAlive(instance.state)) await timed("stop", () => stopLocked(ctx, instance, "upgrade"));
  const backup = await timed("backup", () =>
    createBackup(ctx, instance, `before upgrade to ${target.manifest.version}`),
  );
  item.backup = backup.dir;
  const journal: UpgradeJournal = {
    instance: name,
    model: target.manifest.name,
    from,
    to: { version: target.manifest.version, hash: target.hash, params: plan.publicParams },
    state: oldState,
    backup: backup.dir,
    phase: "changing",
    ranCode: false,
    params_added: plan.added,
    params_dropped: plan.dropped,
    started_at: ctx.now().toISOString(),
    holder: processIdentity(process.pid) ?? String(process.pid),
  };
  const done = markUnderWay(name);
  try {
    await writeUpgradeJournal(ctx, journal);
    try {
      await timed("render", async () => {
        // Again, now that the journal names it: a prune that ran meanwhile has put it back.
        await ensureSharedCode(ctx, target);
        await ctx.store.updateInstance(
          name,
          { model: journal.to, operation: "upgrade" },
          ctx.now().toISOString(),
        );
        Object.assign(instance, {
          modelVersion: journal.to.version,
          modelHash: journal.to.hash,
          params: journal.to.params,
        });
        await writeInstanceFiles(
          ctx,
          instance,
          target,
          plan.values,
          codeDir,
          await dataOwner(ctx, name),
          instance.database !== null ? databaseEnvOf(plan.env) : {},
        );
        await writeInstanceProgram(ctx, name, target.manifest, codeDir);
        await removeStaleTemplates(ctx, name, target.manifest, plan.oldManifest);
        if (requestTimeoutOf(ctx, target.manifest) !== requestTimeoutOf(ctx, plan.oldManifest)) {
          await ctx.proxy.applySite(siteOf(ctx, instance, target.manifest));
        }
      });
      // From here on, instance code runs on the new version: it may change data/ and the database.
      journal.ranCode = true;
      await writeUpgradeJournal(ctx, journal);
      if (target.manifest.upgrade) {
        await timed("command", async () => {
          // In the instance's cgroup, as its app: nothing it starts outlives the step.
          await prepareCgroup(ctx, instance, target.manifest);
          try {
            await runModelStep(ctx, name, target, "upgrade");
          } finally {
            await killCgroup(ctx, name);
          }
        });
      }
      if (oldState === "running") {
        await timed("verify", () => startLocked(ctx, instance, "upgrade"));
      } else if (verify) {
        await timed("verify", async () => {
          await startLocked(ctx, instance, "upgrade");
          await stopLocked(ctx, instance, "upgrade", "verified on its new version");
        });
      }
      if (oldState === "suspended") {
        await ctx.store.updateInstance(name, { state: "suspended" }, ctx.now().toISOString());
      }
    } catch (error) {
      return await failedUpgrade(ctx, instance, journal, error, item, steps, started);
    }
    journal.phase = "committed";
    journal.finished_at = ctx.now().toISOString();
    await writeUpgradeJournal(ctx, journal);
    await ctx.store.updateInstance(name, { operation: null }, ctx.now().toISOString());
  } finally {
    done();
  }
  item.outcome = "upgraded";
  item.duration_ms = elapsed(started);
  await recordEvent(ctx, name, "upgrade", "ok", {
    cause: causeOf(ctx),
    durationMs: item.duration_ms,
    message: [
      `${target.manifest.name} ${from.version} to ${target.manifest.version}`,
      ...(plan.added.length > 0 ? [`parameters added: ${plan.added.join(", ")}`] : []),
      ...(plan.dropped.length > 0 ? [`parameters dropped: ${plan.dropped.join(", ")}`] : []),
      `pre-upgrade backup ${backup.dir}`,
    ].join("; "),
  });
  return item;
}

/**
 * After rollBack (which leaves the instance stopped): the state it had before, running again
 * (a failed start throws) when it ran.
 */
async function giveStateBack(
  ctx: AccContext,
  instance: InstanceRecord,
  state: InstanceState,
): Promise<void> {
  if (state === "running") await startLocked(ctx, instance, "rollback");
  else if (state === "suspended" || state === "failed") {
    await ctx.store.updateInstance(instance.name, { state }, ctx.now().toISOString());
  }
}

/** An upgrade step failed: back to the old version, the old state, and an event saying why. */
async function failedUpgrade(
  ctx: AccContext,
  instance: InstanceRecord,
  journal: UpgradeJournal,
  error: unknown,
  item: UpgradeItem,
  steps: NonNullable<UpgradeItem["steps"]>,
  started: number,
): Promise<UpgradeItem> {
  // Whatever failed (the instance, or acc: a full disk, a bug), nothing is left half-upgraded.
  const name = instance.name;
  const details = isAccError(error) ? error.details : undefined;
  const log = details !== undefined && details !== "" ? details : await lastLogLines(ctx, name, 20);
  const at = Date.now();
  await rollBack(ctx, instance, journal);
  let reason = errorMessage(error);
  try {
    await giveStateBack(ctx, instance, journal.state);
  } catch (startError) {
    if (!isAccError(startError)) throw startError;
    reason = `${reason}; the old version did not start again either: ${startError.message}`;
  }
  // The new version's failure is the upgrade's, told by its event: not the old version's error.
  await ctx.store.updateInstance(
    name,
    { operation: null, ...(journal.state !== "failed" ? { lastError: null } : {}) },
    ctx.now().toISOString(),
  );
  steps.rollback = elapsed(at);
  item.outcome = "rolled_back";
  item.reason = reason;
  item.log = log;
  item.duration_ms = elapsed(started);
  const lastLines = log.split("\n").slice(-10).join("\n");
  await recordEvent(ctx, name, "upgrade", "failed", {
    cause: causeOf(ctx),
    durationMs: item.duration_ms,
    message: `rolled back to ${journal.from.version}: ${reason}${lastLines !== "" ? `\n${lastLines}` : ""}`,
  });
  await recordEvent(ctx, name, "rollback", "ok", {
    cause: "upgrade",
    durationMs: steps.rollback,
    message: `back on ${journal.model} ${journal.from.version} (its files and database from ${journal.backup})`,
  });
  return item;
}

/** Checks the options and finds the instances, each with the model version it would go to. */
async function targetsOf(
  ctx: AccContext,
  options: UpgradeOptions,
): Promise<{ targets: { name: string; target: LoadedModel }[]; given: Record<string, string> }> {
  if (!Number.isSafeInteger(options.batch) || options.batch < 1 || options.batch > 64) {
    throw new AccError("ACC_INVALID", `invalid batch ${showValue(String(options.batch))}`, {
      hint: "--batch takes a number of instances at once, from 1 to 64",
    });
  }
  if (!Number.isSafeInteger(options.maxFailures) || options.maxFailures < 1) {
    throw new AccError(
      "ACC_INVALID",
      `invalid max-failures ${showValue(String(options.maxFailures))}`,
      { hint: "--max-failures takes a whole number from 1" },
    );
  }
  const requested = [...new Set(options.names.map((n) => validateInstanceName(n)))];
  if (options.model !== undefined && !isValidModelName(options.model)) {
    throw new AccError("ACC_INVALID", `invalid model name ${showValue(options.model)}`, {
      hint: "acc models lists them",
    });
  }
  const given = parseParamArgs(options.params);
  if ((options.model === undefined) === (requested.length === 0)) {
    throw new AccError(
      "ACC_INVALID",
      `name the instances to upgrade or give a model${options.model !== undefined ? ", not both" : ""}`,
      { hint: "acc upgrade NAME... or acc upgrade --model MODEL" },
    );
  }
  const models = new Map<string, LoadedModel>();
  const modelOf = async (model: string): Promise<LoadedModel> => {
    let loaded = models.get(model);
    if (loaded === undefined) {
      loaded = await ctx.models.get(model);
      models.set(model, loaded);
    }
    return loaded;
  };
  let targets: { name: string; target: LoadedModel }[];
  if (options.model !== undefined) {
    const target = await modelOf(options.model);
    targets = (await ctx.store.listInstances())
      .filter((i) => i.model === target.manifest.name && i.modelHash !== target.hash)
      .map((i) => ({ name: i.name, target }));
  } else {
    targets = [];
    for (const name of requested) {
      targets.push({ name, target: await modelOf((await getInstance(ctx, name)).model) });
    }
  }
  for (const [key, value] of Object.entries(given)) {
    const declaring = [...models.values()].filter((m) => Object.hasOwn(m.manifest.params, key));
    if (declaring.length === 0) {
      throw new AccError(
        "ACC_INVALID",
        `unknown parameter ${showValue(key)}: no model being upgraded to declares it`,
        { hint: "--param gives a value to a parameter the new version adds" },
      );
    }
    // A bad value is refused before anything, not once per instance.
    for (const model of declaring) checkParamValue(model.manifest, key, value);
  }
  return { targets, given };
}

/**
 * acc upgrade: each instance to its model's current version, `batch` at once, stopping after
 * `maxFailures` rolled back. With dryRun, says what each would change and changes nothing.
 */
export async function upgradeInstances(
  ctx: AccContext,
  options: UpgradeOptions,
): Promise<UpgradeReport> {
  const started = Date.now();
  const { targets, given } = await targetsOf(ctx, options);
  const results: UpgradeItem[] = [];
  let stopped: string | null = null;

  if (options.dryRun) {
    for (const { name, target } of targets) {
      const instance = await getInstance(ctx, name);
      const item: UpgradeItem = {
        name,
        model: instance.model,
        from: versionText(instance, target),
        to: target.manifest.version,
        outcome: "skipped",
      };
      try {
        const plan = await planUpgrade(ctx, instance, target, given);
        Object.assign(item, {
          outcome: "would_upgrade",
          params_added: plan.added,
          params_dropped: plan.dropped,
          ...(await describePlan(ctx, plan)),
        });
      } catch (error) {
        if (!(error instanceof Skip)) throw error;
        item.reason = error.message;
      }
      results.push(item);
    }
  } else {
    let next = 0;
    let rolledBack = 0;
    const worker = async (): Promise<void> => {
      while (next < targets.length && stopped === null) {
        const { name, target } = targets[next++] as (typeof targets)[number];
        const item = await upgradeOne(ctx, name, target, given, options.verify);
        results.push(item);
        if (item.outcome === "rolled_back" || item.outcome === "failed") {
          rolledBack++;
          if (rolledBack >= options.maxFailures && stopped === null) {
            stopped = `${rolledBack} instance${rolledBack > 1 ? "s" : ""} rolled back (--max-failures ${options.maxFailures})`;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.batch, targets.length) }, worker));
    for (const { name, target } of targets.slice(next)) {
      const instance = await getInstance(ctx, name);
      results.push({
        name,
        model: instance.model,
        from: instance.modelVersion,
        to: target.manifest.version,
        outcome: "not_started",
        reason: `the rollout stopped: ${stopped ?? "?"}`,
      });
    }
  }
  const order = new Map(targets.map(({ name }, index) => [name, index]));
  results.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
  const counts: Record<UpgradeOutcome, number> = {
    upgraded: 0,
    rolled_back: 0,
    failed: 0,
    skipped: 0,
    would_upgrade: 0,
    not_started: 0,
  };
  for (const item of results) counts[item.outcome]++;
  return { dry_run: options.dryRun, results, counts, stopped, duration_ms: elapsed(started) };
}

/**
 * acc rollback: the instance back on the version before its last upgrade, with its files and
 * database from the pre-upgrade backup. What it wrote since is not lost: a backup of it is
 * taken first. Refused when the pre-upgrade backup or the old code folder is gone.
 */
export async function rollbackInstance(
  ctx: AccContext,
  name: string,
): Promise<{ instance: InstanceRecord; from: string; to: string; backup: string }> {
  await getInstance(ctx, name);
  return lease(ctx, name, "rollback", async () => {
    const started = Date.now();
    await settleUpgrade(ctx, name);
    await settleRestore(ctx, name);
    const instance = await getInstance(ctx, name);
    const journal = await readUpgradeJournal(ctx, name);
    if (journal === undefined) {
      throw new AccError("ACC_STATE", `${name} has no upgrade to roll back`, {
        hint: "acc events shows its upgrades and rollbacks",
      });
    }
    if (instance.modelHash !== journal.to.hash) {
      throw new AccError(
        "ACC_STATE",
        `${name} is on ${instance.model} ${instance.modelVersion}, not on ${journal.to.version} that its last upgrade made`,
      );
    }
    try {
      await openBackup(ctx, journal.backup);
    } catch (error) {
      throw new AccError(
        "ACC_STATE",
        `cannot roll ${name} back to ${journal.from.version}: its pre-upgrade backup ${journal.backup} is gone or damaged (${errorMessage(error)})`,
        { cause: error, hint: "restore another backup with acc restore, or upgrade again" },
      );
    }
    if ((await pinnedModel(ctx, { model: journal.model, ...journal.from })) === undefined) {
      throw new AccError(
        "ACC_STATE",
        `cannot roll ${name} back: the code folder of ${journal.model} ${journal.from.version} is gone`,
      );
    }
    const wasState = instance.state;
    if (mayBeAlive(instance.state)) await stopLocked(ctx, instance, "rollback");
    // What it wrote on the new version is kept: the rollback replaces it with the old backup.
    const before = await createBackup(ctx, instance, `before rollback to ${journal.from.version}`);
    journal.ranCode = true;
    const done = markUnderWay(name);
    try {
      await rollBack(ctx, instance, journal);
    } finally {
      done();
    }
    await giveStateBack(ctx, instance, wasState);
    await ctx.store.updateInstance(name, { operation: null }, ctx.now().toISOString());
    await recordEvent(ctx, name, "rollback", "ok", {
      cause: causeOf(ctx),
      durationMs: elapsed(started),
      message: `${journal.model} ${journal.to.version} back to ${journal.from.version}, files and database from ${journal.backup}; what it had before the rollback is in ${before.dir}`,
    });
    return {
      instance: await getInstance(ctx, name),
      from: journal.to.version,
      to: journal.from.version,
      backup: before.dir,
    };
  });
}
