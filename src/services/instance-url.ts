// An instance's URL follows its certificate (https once it is served so): its env file and
// config templates are written again, read by the app at its next start.
import { readFile } from "node:fs/promises";
import { databaseEnvOf, parseEnvFile } from "../core/instance-env.js";
import { instancePaths } from "../core/paths.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { dataOwner } from "./instance-data.js";
import { paramValuesOf, writeInstanceFiles } from "./instance-files.js";
import { codeDirOf, instanceManifest } from "./model-code.js";

/**
 * Writes the instance's env file and config templates again, as at its create: ACC_URL (and
 * {{ url }} in templates) follow its scheme. The running process keeps its environment: the
 * new one is read at its next start.
 */
export async function rewriteInstanceFiles(
  ctx: AccContext,
  instance: InstanceRecord,
): Promise<void> {
  const p = instancePaths(ctx.home, instance.name);
  // HOME/instances/NAME is root's: the instance cannot have swapped its env file for a link.
  const oldEnv = parseEnvFile(await readFile(p.env, "utf8"));
  const manifest = await instanceManifest(ctx, instance);
  const codeDir = codeDirOf(ctx, instance.model, instance.modelVersion, instance.modelHash);
  await writeInstanceFiles(
    ctx,
    instance,
    { manifest, dir: codeDir, source: "user", hash: instance.modelHash },
    // The secret ones too: they are in the env file only, and it is written again.
    paramValuesOf(manifest, instance.params, oldEnv),
    codeDir,
    await dataOwner(ctx, instance.name),
    databaseEnvOf(oldEnv),
  );
}
