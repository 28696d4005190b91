import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { instancePaths } from "../core/paths.js";
import { AccError } from "../lib/errors.js";
import { writeFileAtomic } from "../lib/files.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";

export interface BackupManifest {
  format: 1;
  instance: string;
  model: string;
  model_version: string;
  model_hash: string;
  hosts: string[];
  params: Record<string, string>;
  reason: string;
  created_at: string;
  files: Record<string, { bytes: number; sha256: string }>;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Timestamp usable as a folder name, sortable: 20261126T014501Z-123. */
function stamp(date: Date): string {
  return `${date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.(\d{3})Z$/, "$1Z")}`;
}

/**
 * Backs up the instance's own files (data, config, env with its secrets) without waking it:
 * the app's data folder is read from disk. A later issue adds its database.
 */
export async function createBackup(
  ctx: AccContext,
  instance: InstanceRecord,
  reason: string,
): Promise<string> {
  const now = ctx.now();
  const dir = path.join(ctx.paths.backups, instance.name, stamp(now));
  const temp = `${dir}.partial`;
  await mkdir(ctx.paths.backups, { recursive: true, mode: 0o700 });
  await mkdir(temp, { recursive: true, mode: 0o700 });
  try {
    const p = instancePaths(ctx.home, instance.name);
    const archive = path.join(temp, "files.tar.gz");
    const members = ["data", "config", "env"];
    await ctx.exec(
      "tar",
      ["--create", "--gzip", "--file", archive, "--directory", p.root, "--", ...members],
      {
        timeoutMs: 30 * 60_000,
      },
    );
    const manifest: BackupManifest = {
      format: 1,
      instance: instance.name,
      model: instance.model,
      model_version: instance.modelVersion,
      model_hash: instance.modelHash,
      hosts: instance.hosts,
      params: instance.params,
      reason,
      created_at: now.toISOString(),
      files: {
        "files.tar.gz": { bytes: (await stat(archive)).size, sha256: await sha256File(archive) },
      },
    };
    await writeFileAtomic(
      path.join(temp, "manifest.json"),
      `${JSON.stringify(manifest, null, 2)}\n`,
      {
        mode: 0o600,
      },
    );
    // Only a complete backup gets its final name.
    const { rename } = await import("node:fs/promises");
    await rename(temp, dir);
    return dir;
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw new AccError(
      "ACC_FAILED",
      `backup of ${instance.name} failed: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

export function createFinalBackup(ctx: AccContext, instance: InstanceRecord): Promise<string> {
  return createBackup(ctx, instance, "final backup before destroy");
}
