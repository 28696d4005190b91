import { execFile, type ExecFileOptions } from "node:child_process";

export class ExecError extends Error {
  readonly command: string[];
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;

  constructor(options: {
    command: string[];
    exitCode: number | null;
    signal: string | null;
    stdout: string;
    stderr: string;
    cause?: unknown;
  }) {
    const why =
      options.exitCode !== null
        ? `exit code ${options.exitCode}`
        : options.signal !== null
          ? `signal ${options.signal}`
          : "failed to run";
    const firstLine = options.stderr.trim().split("\n").at(-1) ?? "";
    super(`${options.command.join(" ")}: ${why}${firstLine ? `: ${firstLine}` : ""}`, {
      cause: options.cause,
    });
    this.name = "ExecError";
    this.command = options.command;
    this.exitCode = options.exitCode;
    this.signal = options.signal;
    this.stdout = options.stdout;
    this.stderr = options.stderr;
  }
}

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Milliseconds; every external call has one. */
  timeoutMs?: number;
  input?: string;
  signal?: AbortSignal;
  /** Run as this user and group (root only); supplementary groups are dropped. */
  uid?: number;
  gid?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Runs a program with an argument array (never a shell string) and resolves with its output. */
export type Exec = (
  file: string,
  args: readonly string[],
  options?: ExecOptions,
) => Promise<ExecResult>;

export const exec: Exec = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    const execOptions: ExecFileOptions = {
      cwd: options.cwd,
      env: options.env,
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: 64 * 1024 * 1024,
      signal: options.signal,
      encoding: "utf8",
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.gid !== undefined ? { gid: options.gid } : {}),
    };
    const child = execFile(file, [...args], execOptions, (error, stdout, stderr) => {
      const out = String(stdout);
      const err = String(stderr);
      if (error) {
        const code = (error as NodeJS.ErrnoException & { code?: unknown }).code;
        reject(
          new ExecError({
            command: [file, ...args],
            exitCode: typeof code === "number" ? code : null,
            signal: (error as { signal?: string | null }).signal ?? null,
            stdout: out,
            stderr: err || (typeof code === "string" ? code : error.message),
            cause: error,
          }),
        );
        return;
      }
      resolve({ stdout: out, stderr: err });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
