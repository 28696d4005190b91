import { readFile } from "node:fs/promises";
import { parseEnvFile } from "../core/instance-env.js";
import { instancePaths } from "../core/paths.js";
import type { AccContext } from "./context.js";

/** The instance's environment as its process gets it, secrets included. */
export async function readEnvSecrets(
  ctx: AccContext,
  name: string,
): Promise<Record<string, string>> {
  return parseEnvFile(await readFile(instancePaths(ctx.home, name).env, "utf8"));
}
