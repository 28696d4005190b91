import { execFile } from "node:child_process";
import { ACC_BIN } from "../test/harness/acc.js";

// Prints the process's peak RSS at exit, so the CLI's own memory is measured as a user runs it.
const MAXRSS_HOOK =
  'data:text/javascript,import{writeSync}from"node:fs";process.on("exit",()=>writeSync(2,"ACC_MAXRSS_KB="+process.resourceUsage().maxRSS+"\\n"))';

/** Runs the built acc CLI and gives its wall time, its peak RSS and its stdout. */
export function runMeasured(
  env: NodeJS.ProcessEnv,
  args: string[],
): Promise<{ ms: number; maxRssKb: number; stdout: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", MAXRSS_HOOK, ACC_BIN, ...args],
      { env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: 600_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`acc ${args.join(" ")}: ${stderr}`));
        const kb = Number(/ACC_MAXRSS_KB=(\d+)/.exec(stderr)?.[1] ?? NaN);
        resolve({ ms: performance.now() - started, maxRssKb: kb, stdout });
      },
    );
  });
}
