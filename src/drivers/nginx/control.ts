// What acc can observe of a running nginx: its master by pid file, its workers through /proc,
// and the generation its workers answer on the control socket.
import { request } from "node:http";
import { open, readFile, stat } from "node:fs/promises";
import { AccError, hasErrno } from "../../lib/errors.js";
import { readFileIfExists } from "../../lib/files.js";

/** A process we may signal; EPERM means it belongs to someone else, so it is not our nginx. */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if (hasErrno(error, "ESRCH") || hasErrno(error, "EPERM")) return false;
    throw error;
  }
}

/** The process title nginx gives itself ("nginx: master process ..."), or undefined when gone. */
async function readTitle(pid: number): Promise<string | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return raw.replace(/\0+$/, "").replace(/\0/g, " ");
  } catch (error) {
    if (hasErrno(error, "ENOENT") || hasErrno(error, "ESRCH")) return undefined;
    throw error;
  }
}

/**
 * The master's pid when the pid file names a live nginx master started with our config. The
 * title check guards against a stale pid file whose pid now belongs to another process, another
 * nginx included: we send signals to this pid.
 */
export async function readMasterPid(
  pidFile: string,
  confPath: string,
): Promise<number | undefined> {
  const text = await readFileIfExists(pidFile);
  if (text === undefined) return undefined;
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1 || !processExists(pid)) return undefined;
  // A zombie has an empty title, so a master that exited is not taken for a live one.
  const title = await readTitle(pid);
  return title?.startsWith("nginx: master process") && title.includes(confPath) ? pid : undefined;
}

/**
 * Workers that accept new connections: a worker told to quit renames itself "worker process is
 * shutting down" when it closes its listening sockets. Undefined when /proc has no children list.
 */
export async function listAcceptingWorkers(masterPid: number): Promise<number[] | undefined> {
  let raw: string;
  try {
    raw = await readFile(`/proc/${masterPid}/task/${masterPid}/children`, "utf8");
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return undefined;
    throw error;
  }
  const pids = raw.split(/\s+/).filter(Boolean).map(Number);
  const accepting: number[] = [];
  for (const pid of pids) {
    if (await isAcceptingWorker(pid)) accepting.push(pid);
  }
  return accepting;
}

async function isAcceptingWorker(pid: number): Promise<boolean> {
  const title = await readTitle(pid);
  return (
    title !== undefined &&
    title.startsWith("nginx: worker process") &&
    !title.includes("shutting down")
  );
}

/** The generation the worker that accepts this connection has loaded. */
export function fetchGeneration(socketPath: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // A fresh connection each time (no agent): a kept-alive one would stay on an old worker.
    const req = request(
      {
        socketPath,
        path: "/generation",
        agent: false,
        timeout: timeoutMs,
        headers: { connection: "close" },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => {
          if (res.statusCode === 200) resolve(body.trim());
          else reject(new Error(`control socket answered ${res.statusCode ?? "?"}`));
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () =>
      req.destroy(new Error(`control socket did not answer within ${timeoutMs} ms`)),
    );
    req.on("error", reject);
    req.end();
  });
}

export interface SettleOptions {
  socketPath: string;
  masterPid: number;
  generation: string;
  /** Workers that accepted connections before the reload; undefined when they cannot be listed. */
  oldWorkers: readonly number[] | undefined;
  timeoutMs: number;
  /** nginx's error log and its size before SIGHUP: a refused reload is reported at once. */
  errorLog?: { path: string; offset: number };
}

/** nginx's own [emerg] line, without its prefix ("nginx: " or a log timestamp and pid). */
export function nginxComplaint(stderr: string): string {
  const lines = stderr.split("\n").filter((line) => line.trim() !== "");
  const line =
    lines.find((l) => l.includes("[emerg]")) ?? lines.find((l) => /\[(alert|crit)\]/.test(l));
  const text = line ?? lines.at(-1) ?? "no message";
  return text.replace(/^.*?\[(?:emerg|alert|crit)\] (?:\d+#\d+: )?/, "").trim();
}

export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return 0;
    throw error;
  }
}

/**
 * The [emerg] line the master logged since offset, whole. Only the master's own lines count: an
 * `nginx -t` run by another process logs to the same file under its own pid.
 */
async function masterComplaint(
  errorLog: { path: string; offset: number },
  masterPid: number,
): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(errorLog.path, "r");
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return undefined;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size <= errorLog.offset) return undefined;
    const buffer = Buffer.alloc(Math.min(size - errorLog.offset, 256 * 1024));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, errorLog.offset);
    const line = buffer
      .toString("utf8", 0, bytesRead)
      .split("\n")
      .find((l) => l.includes(`[emerg] ${masterPid}#`));
    return line;
  } finally {
    await handle.close();
  }
}

/** The master refused a reload (its [emerg] line): it keeps its old configuration and workers. */
export class ReloadRefused extends AccError {
  readonly complaint: string;
  readonly line: string;

  constructor(line: string) {
    const complaint = nginxComplaint(line);
    super("ACC_NGINX", `nginx refused to reload: ${complaint}`, {
      hint: "'acc doctor' finds the broken file",
      details: line.trim(),
    });
    this.complaint = complaint;
    this.line = line;
  }
}

/**
 * Waits until a reload has settled: a new worker answers the new generation, and every old
 * worker has stopped accepting. The master starts new workers 100 ms before it tells the old
 * ones to quit, so the generation alone would let a request land on the old config.
 */
export async function waitSettled(options: SettleOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let seen = "";
  let lastError: unknown;
  for (;;) {
    if (!processExists(options.masterPid)) {
      throw new AccError("ACC_NGINX", "nginx exited while it was reloading its configuration");
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new AccError(
        "ACC_NGINX",
        `nginx did not load its new configuration within ${options.timeoutMs} ms (workers answer generation ${JSON.stringify(seen)}, expected ${JSON.stringify(options.generation)})`,
        { hint: "see HOME/nginx/logs/error.log, or run 'acc doctor'", cause: lastError },
      );
    }
    try {
      seen = await fetchGeneration(options.socketPath, Math.min(remaining, 2_000));
    } catch (error) {
      // The old workers keep answering while the master re-reads its config, so this is a
      // missing or overloaded socket: retried until the deadline, then reported as the cause.
      lastError = error;
    }
    if (seen === options.generation && (await oldWorkersStopped(options.oldWorkers))) return;
    const refusal =
      options.errorLog && (await masterComplaint(options.errorLog, options.masterPid));
    // The master keeps its old configuration and workers: nothing changed for users.
    if (refusal) throw new ReloadRefused(refusal);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function oldWorkersStopped(oldWorkers: readonly number[] | undefined): Promise<boolean> {
  for (const pid of oldWorkers ?? []) {
    if (await isAcceptingWorker(pid)) return false;
  }
  return true;
}
