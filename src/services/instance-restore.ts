// Backups and restores of an instance, under its lease: in place, or as a new instance.
import path from "node:path";
import { mayBeAlive } from "../core/states.js";
import { validateNewInstanceName } from "../core/validate.js";
import { AccError } from "../lib/errors.js";
import type { InstanceRecord } from "../store/store.js";
import { backupEnv, createBackup, openBackup, type BackupResult } from "./backups.js";
import type { AccContext } from "./context.js";
import {
  causeOf,
  createInstance,
  destroyInstance,
  elapsed,
  ensureInstanceUser,
  getInstance,
  lease,
  recordEvent,
  startInstance,
  startLocked,
  stopLocked,
  type CreateResult,
} from "./instances.js";
import { paramValuesOf } from "./instance-files.js";
import { pinnedModel } from "./model-code.js";
import { beginRestoreAsNew, pendingRestore, restoreInto, settleRestore } from "./restores.js";

/** A backup of an instance, awake or asleep, without waking it. */
export async function backupInstance(ctx: AccContext, name: string): Promise<BackupResult> {
  await getInstance(ctx, name);
  return lease(ctx, name, "backup", async () =>
    createBackup(ctx, await getInstance(ctx, name), "acc backup"),
  );
}

/**
 * Restores a backup into an existing instance: stops it, puts the backup's data/ and database
 * in place, both or neither (restores.ts), and starts it again if it was running. A damaged
 * backup is refused before anything.
 */
export async function restoreInstance(
  ctx: AccContext,
  name: string,
  backupId: string,
  options: { asNew?: boolean } = {},
): Promise<InstanceRecord> {
  await getInstance(ctx, name);
  const backup = await openBackup(ctx, backupId, name);
  return lease(ctx, name, "restore", async () => {
    const started = Date.now();
    const instance = await getInstance(ctx, name);
    const wasRunning = instance.state === "running";
    if (mayBeAlive(instance.state)) await stopLocked(ctx, instance, "restore");
    const ids = await ensureInstanceUser(ctx, name);
    await restoreInto(ctx, instance, backup, ids, options);
    await recordEvent(ctx, name, "restore", "ok", {
      cause: causeOf(ctx),
      durationMs: elapsed(started),
      message: backup.dir,
    });
    if (wasRunning) await startLocked(ctx, instance, "restore");
    return getInstance(ctx, name);
  });
}

export interface RestoreAsNewResult extends CreateResult {
  /** The model the new instance was rendered from: the backup's version, or the current one. */
  model: { name: string; version: string; from: "backup" | "current"; backupVersion: string };
}

/**
 * Creates a new instance from a backup, rendered for itself (its name, port, hosts, data path,
 * its own database role and password) from the backup's model version when the home still has
 * it, else from the current model. From the backup come data/, the database, and the
 * parameters (secret ones from its env copy): the app's data may depend on them (a key that
 * signs its sessions, an admin password stored hashed).
 */
export async function restoreAsNew(
  ctx: AccContext,
  newName: string,
  backupId: string,
): Promise<RestoreAsNewResult> {
  validateNewInstanceName(newName, ctx.config.admin_host);
  const backup = await openBackup(ctx, backupId);
  const env = await backupEnv(ctx, backup);
  const pinned = await pinnedModel(ctx, {
    model: backup.manifest.model,
    version: backup.manifest.model_version,
    hash: backup.manifest.model_hash,
  });
  const model = pinned ?? (await ctx.models.get(backup.manifest.model));
  const params = Object.entries(paramValuesOf(model.manifest, backup.manifest.params, env)).flatMap(
    ([key, value]) => (value === "" ? [] : [`${key}=${value}`]),
  );
  if (await ctx.store.getInstance(newName)) {
    throw new AccError("ACC_CONFLICT", `instance ${newName} already exists`, {
      hint: "restore --as-new makes a new instance: pick another name",
    });
  }
  await beginRestoreAsNew(ctx, newName, backup.dir);
  let created: CreateResult;
  try {
    created = await createInstance(ctx, {
      model: model.manifest.name,
      name: newName,
      hosts: [],
      params,
      start: false,
      loaded: model,
    });
  } catch (error) {
    // createInstance undid itself; its journal goes too.
    await settleRestore(ctx, newName);
    throw error;
  }
  try {
    await restoreInstance(ctx, newName, path.relative(ctx.paths.backups, backup.dir), {
      asNew: true,
    });
  } catch (error) {
    // Not committed (restoreInto undid it): the instance it was making goes too.
    if ((await pendingRestore(ctx, newName))?.phase !== "prepared") {
      await destroyInstance(ctx, newName, { backup: false });
    }
    throw error;
  }
  await startInstance(ctx, newName, "restore");
  return {
    ...created,
    instance: await getInstance(ctx, newName),
    model: {
      name: model.manifest.name,
      version: model.manifest.version,
      from: pinned !== undefined ? "backup" : "current",
      backupVersion: backup.manifest.model_version,
    },
  };
}
