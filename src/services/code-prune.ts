// Removes the code folders (HOME/code/<model>-<version>-<hash>) that no instance uses.
import { lstat, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { hasErrno } from "../lib/errors.js";
import { readDirIfExists } from "../lib/files.js";
import { processGone } from "../lib/processes.js";
import type { AccContext } from "./context.js";
import { codeDirOf } from "./model-code.js";
import { upgradeJournals } from "./upgrade-journal.js";

export interface PrunedFolder {
  /** The folder's name under HOME/code. */
  folder: string;
  /** What it took on disk (blocks, each inode once). */
  bytes: number;
  /** unused: no instance runs this model version; unfinished: a copy whose create died. */
  why: "unused" | "unfinished";
}

export interface PruneResult {
  dry_run: boolean;
  removed: PrunedFolder[];
  freed_bytes: number;
  /** Code folders left in place because an instance uses them. */
  kept: number;
}

// ensureSharedCode copies into "<folder>.tmp-PID-N" (N random) and renames; a prune renames a folder
// to ".prune-PID-<folder>" before removing it. Either, left by a dead process, is garbage.
const UNFINISHED_COPY = /\.tmp-(\d+)-\d+$/;
const PRUNING = /^\.prune-(\d+)-/;

async function ownerGone(name: string, pattern: RegExp): Promise<boolean> {
  const pid = Number(pattern.exec(name)?.[1]);
  return pid > 0 && (await processGone(pid));
}

/** Disk blocks under dir, each inode counted once (hard links share theirs); links not followed. */
async function diskUsage(dir: string, seen = new Set<string>()): Promise<number> {
  const info = await lstat(dir);
  const key = `${info.dev}:${info.ino}`;
  if (seen.has(key)) return 0;
  seen.add(key);
  let bytes = info.blocks * 512;
  if (info.isDirectory()) {
    for (const entry of await readdir(dir)) bytes += await diskUsage(path.join(dir, entry), seen);
  }
  return bytes;
}

async function usedFolders(ctx: AccContext): Promise<Set<string>> {
  const instances = await ctx.store.listInstances();
  const journals = await upgradeJournals(
    ctx,
    instances.map((i) => i.name),
  );
  const pins = [
    ...instances.map((i) => ({ model: i.model, version: i.modelVersion, hash: i.modelHash })),
    // The versions an upgrade journal names, while it is kept: acc rollback goes back to `from`.
    ...journals.flatMap(({ journal }) => [
      { model: journal.model, ...journal.from },
      { model: journal.model, ...journal.to },
    ]),
  ];
  return new Set(pins.map((p) => path.basename(codeDirOf(ctx, p.model, p.version, p.hash))));
}

/**
 * Removes the code folders no instance uses, and copies left by creates that died; never one
 * an instance uses, in whatever state (a create in progress has its row before it copies), nor
 * the one an upgraded instance would roll back to.
 * Backups do not keep a folder: a restore into an existing instance uses that instance's, and
 * `restore --as-new` falls back to the current model when its version's folder is gone.
 */
export async function pruneCode(
  ctx: AccContext,
  options: { dryRun: boolean },
): Promise<PruneResult> {
  const root = ctx.paths.code;
  const used = await usedFolders(ctx);
  const candidates: PrunedFolder[] = [];
  let kept = 0;
  for (const name of (await readDirIfExists(root)).sort()) {
    let why: PrunedFolder["why"];
    if (UNFINISHED_COPY.test(name)) {
      if (!(await ownerGone(name, UNFINISHED_COPY))) continue; // a create is copying it now
      why = "unfinished";
    } else if (PRUNING.test(name)) {
      if (!(await ownerGone(name, PRUNING))) continue; // another prune is removing it
      why = "unfinished";
    } else if (used.has(name)) {
      kept++;
      continue;
    } else {
      why = "unused";
    }
    candidates.push({ folder: name, bytes: await diskUsage(path.join(root, name)), why });
  }
  if (options.dryRun) {
    return { dry_run: true, removed: candidates, freed_bytes: sum(candidates), kept };
  }

  // A create may have picked one of these folders since the store was read. Moved aside
  // first, a folder is no longer found by a create that looks now (it copies the model
  // again); one that looked before has its row in the store already, so the second read
  // below sees it and the folder is put back.
  const aside = new Map<string, string>();
  for (const candidate of candidates) {
    if (candidate.why !== "unused") continue;
    const moved = path.join(root, `.prune-${process.pid}-${candidate.folder}`);
    await rename(path.join(root, candidate.folder), moved);
    aside.set(candidate.folder, moved);
  }
  const usedNow = await usedFolders(ctx);
  const removed: PrunedFolder[] = [];
  for (const candidate of candidates) {
    const moved = aside.get(candidate.folder);
    const where = moved ?? path.join(root, candidate.folder);
    if (moved !== undefined && usedNow.has(candidate.folder)) {
      try {
        await rename(moved, path.join(root, candidate.folder));
        kept++;
        continue;
      } catch (error) {
        // The create copied the model again meanwhile: that copy serves, this one goes.
        if (!hasErrno(error, "ENOTEMPTY") && !hasErrno(error, "EEXIST")) throw error;
      }
    }
    // HOME/code is root's and no instance writes in it: nothing here can be swapped for a link.
    await rm(where, { recursive: true, force: true });
    removed.push(candidate);
  }
  return { dry_run: false, removed, freed_bytes: sum(removed), kept };
}

function sum(folders: PrunedFolder[]): number {
  return folders.reduce((total, f) => total + f.bytes, 0);
}
