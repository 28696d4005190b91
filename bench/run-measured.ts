import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { ACC_BIN } from "../test/harness/acc.js";

// Prints the process's peak RSS at exit, so the CLI's own memory is measured as a user runs it.
const MAXRSS_HOOK =
  'data:text/javascript,import{writeSync}from"node:fs";process.on("exit",()=>writeSync(2,"ACC_MAXRSS_KB="+process.resourceUsage().maxRSS+"\\n"))';

/**
 * Runs the built acc CLI (or `bin`, another build's) and gives its wall time, its peak RSS and
 * its stdout. `rss: false` leaves out the hook that reads the peak RSS (NaN then): a timing
 * compared with a bare `node -e 0` must not carry the hook's own load.
 */
export function runMeasured(
  env: NodeJS.ProcessEnv,
  args: string[],
  options: { bin?: string; rss?: boolean } = {},
): Promise<{ ms: number; maxRssKb: number; stdout: string }> {
  const hook = options.rss === false ? [] : ["--import", MAXRSS_HOOK];
  return runNode(env, [...hook, options.bin ?? ACC_BIN, ...args]).then((result) => ({
    ...result,
    maxRssKb: Number(/ACC_MAXRSS_KB=(\d+)/.exec(result.stderr)?.[1] ?? NaN),
  }));
}

/**
 * CPU time (user + system, ms; 10 ms steps) of a process from /proc, or of its waited-for
 * children with `children` (this process's cutime + cstime): what a run cost the machine,
 * which a loaded machine's wall times hide.
 */
export function cpuMs(pid: number | "self", children = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces): utime is field 14, cstime 17.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const at = (field: number): number => Number(fields[field - 3] ?? NaN);
  return ((children ? at(16) + at(17) : at(14) + at(15)) * 1000) / 100;
}

/** `node ARGS` timed from spawn to exit: `node -e 0` is the floor any CLI in Node pays. */
export function runNode(
  env: NodeJS.ProcessEnv,
  args: string[],
): Promise<{ ms: number; stdout: string; stderr: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      args,
      { env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: 600_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`node ${args.join(" ")}: ${stderr}`));
        resolve({ ms: performance.now() - started, stdout, stderr });
      },
    );
  });
}
