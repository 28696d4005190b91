import { execFile, spawn, type ExecFileOptions } from "node:child_process";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

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
  /** An open file read as the program's stdin (instead of `input`). */
  stdinFd?: number;
  /** Where the program's stdout is streamed instead of being collected (stdout is then ""). */
  stdout?: Writable;
  /**
   * Called with the program's stdout and stderr as they arrive, interleaved as written (stdout
   * is then not collected; stderr still is, for the error).
   */
  output?: (text: string) => void;
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

const MAX_BUFFER = 64 * 1024 * 1024;

export const exec: Exec = (file, args, options = {}) =>
  options.stdinFd !== undefined || options.stdout !== undefined || options.output !== undefined
    ? execStreaming(file, args, options)
    : execCollecting(file, args, options);

const execCollecting: Exec = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    const execOptions: ExecFileOptions = {
      cwd: options.cwd,
      env: options.env,
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: MAX_BUFFER,
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

/**
 * exec with a file as stdin or a stream as stdout (execFile offers neither): resolves once the
 * program has exited and its stdout is all written; rejects as exec does.
 */
const execStreaming: Exec = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    const command = [file, ...args];
    const child = spawn(file, [...args], {
      cwd: options.cwd,
      env: options.env,
      timeout: options.timeoutMs ?? 60_000,
      signal: options.signal,
      stdio: [
        options.stdinFd ?? "ignore",
        options.stdout || options.output ? "pipe" : "ignore",
        "pipe",
      ],
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.gid !== undefined ? { gid: options.gid } : {}),
    });
    let stderr = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      if (stderr.length < MAX_BUFFER) stderr += chunk;
      options.output?.(chunk);
    });
    if (options.output && !options.stdout) {
      child.stdout?.setEncoding("utf8");
      child.stdout?.on("data", options.output);
    }
    const written =
      options.stdout && child.stdout ? pipeline(child.stdout, options.stdout) : Promise.resolve();
    const exited = new Promise<{ code: number | null; signal: string | null }>((done, fail) => {
      child.on("error", fail);
      child.on("close", (code, signal) => done({ code, signal }));
    });
    Promise.all([exited, written]).then(
      ([{ code, signal }]) => {
        if (code === 0) {
          resolve({ stdout: "", stderr });
          return;
        }
        reject(new ExecError({ command, exitCode: code, signal, stdout: "", stderr }));
      },
      (error: unknown) => {
        child.kill("SIGKILL");
        reject(
          new ExecError({
            command,
            exitCode: null,
            signal: null,
            stdout: "",
            stderr: stderr || (error instanceof Error ? error.message : String(error)),
            cause: error,
          }),
        );
      },
    );
  });
