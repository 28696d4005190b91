import os from "node:os";
import path from "node:path";
import { validateHomePath } from "../core/validate.js";

export function isRootUser(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** --home, then ACC_HOME, then /var/lib/acc as root or ~/.acc otherwise. */
export function resolveHome(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const chosen =
    flag ?? env.ACC_HOME ?? (isRootUser() ? "/var/lib/acc" : path.join(os.homedir(), ".acc"));
  return validateHomePath(path.resolve(chosen));
}
