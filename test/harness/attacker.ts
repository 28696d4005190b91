// What an instance's code can do on the machine: run as the instance's own Linux user, with no
// more rights than the kernel gives that user. The security suite uses it to attack acc the
// way a hostile app would, and to check the outcome the way the attacker would see it.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { cp, lstat, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { exec, ExecError } from "../../src/lib/exec.js";
import { instanceUserName } from "../../src/services/users.js";
import { ACC_BIN, createAccHome, type AccHome } from "./acc.js";
import { isAlive, waitFor } from "./common.js";

export interface Identity {
  user: string;
  uid: number;
  gid: number;
}

/** A user's ids, as getent knows them (name or number). */
export async function userIdentity(user: string | number): Promise<Identity> {
  let stdout: string;
  try {
    ({ stdout } = await exec("getent", ["passwd", String(user)], { timeoutMs: 10_000 }));
  } catch (error) {
    if (error instanceof ExecError && error.exitCode === 2) throw new Error(`no user ${user}`);
    throw error;
  }
  const fields = stdout.trim().split(":");
  return { user: fields[0] ?? "", uid: Number(fields[2]), gid: Number(fields[3]) };
}

/** The Linux user an instance's code runs as. */
export function instanceIdentity(name: string): Promise<Identity> {
  return userIdentity(instanceUserName(name));
}

export interface ProcessResult {
  /** null when killed by a signal (a timeout, say). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  /** Run as this user (root otherwise). Supplementary groups are dropped. */
  as?: Identity;
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const PATH = `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;

/**
 * Runs a program in its own process group and kills the whole group when it times out, so
 * nothing it started (a tar under acc backup, say) is left running.
 */
export function runProcess(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<ProcessResult> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      detached: true,
      cwd: options.cwd ?? "/",
      env: options.env ?? { PATH, LANG: "C.UTF-8" },
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.as ? { uid: options.as.uid, gid: options.as.gid } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      // Whatever the leader left in its group goes with it.
      killGroup(child.pid);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
        ms: Date.now() - started,
      });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input);
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** The acc CLI as root, like AccHome.run, but killed with everything it started on a timeout. */
export function runAcc(
  acc: AccHome,
  args: string[],
  options: { timeoutMs?: number } = {},
): Promise<ProcessResult> {
  return runProcess(process.execPath, [ACC_BIN, ...args], {
    env: acc.env,
    timeoutMs: options.timeoutMs ?? 60_000,
  });
}

/**
 * Runs the acc CLI and kills it (-9) after delayMs: its process alone (as `kill -9 PID` does:
 * a tar, pg_dump or pg_restore it started may go on meanwhile), or its whole process group (as
 * a crash of the machine's session would). Returns how it ended, and a clean-up that kills
 * what is left of its process group.
 */
export function killedAcc(
  acc: AccHome,
  args: string[],
  delayMs: number,
  group: boolean,
): Promise<{ how: string; cleanup: () => void }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ACC_BIN, ...args], {
      env: acc.env,
      detached: true,
      stdio: "ignore",
    });
    const pid = child.pid ?? 0;
    const kill = (target: number): void => {
      try {
        process.kill(target, "SIGKILL");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
    };
    const timer = setTimeout(() => kill(group ? -pid : pid), delayMs);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ how: signal ?? `exit ${code}`, cleanup: () => kill(-pid) });
    });
  });
}

/** Runs an acc command and fails (with its output) unless it exits 0. */
export async function accOk(
  acc: AccHome,
  args: string[],
  options: { timeoutMs?: number } = {},
): Promise<string> {
  const result = await runAcc(acc, args, options);
  if (result.code !== 0) {
    throw new Error(
      `acc ${args.join(" ")} ${result.timedOut ? "timed out" : `exited ${result.code}`}: ${result.stderr}`,
    );
  }
  return result.stdout;
}

/**
 * Runs an ES module body as the user. The body sees `input` (the JSON value given), `fs`
 * (node:fs/promises), `fsSync` (node:fs), `path`, `net` and `http`, and returns a JSON value.
 */
export async function nodeAs<T>(
  who: Identity,
  body: string,
  input: unknown = null,
  options: { timeoutMs?: number } = {},
): Promise<T> {
  const script = [
    'import fs from "node:fs/promises";',
    'import fsSync from "node:fs";',
    'import path from "node:path";',
    'import net from "node:net";',
    'import http from "node:http";',
    "const input = JSON.parse(process.argv[1]);",
    `const result = await (async () => {\n${body}\n})();`,
    'process.stdout.write("\\n" + JSON.stringify(result ?? null) + "\\n");',
  ].join("\n");
  const run = await runProcess(
    process.execPath,
    ["--input-type=module", "-e", script, JSON.stringify(input)],
    { as: who, timeoutMs: options.timeoutMs ?? 30_000 },
  );
  const last = run.stdout.trimEnd().split("\n").at(-1) ?? "";
  if (run.code !== 0 || last === "") {
    throw new Error(
      `script as ${who.user} ${run.timedOut ? "timed out" : `exited ${run.code}`}: ${run.stderr}`,
    );
  }
  return JSON.parse(last) as T;
}

/** What an attempt came to: ok, or the errno code (EACCES, ENOENT, ...). */
export interface Attempt {
  ok: boolean;
  code?: string;
  /** What was read, when something was. */
  text?: string;
}

/** Tries to read a file as the user. */
export function readAs(who: Identity, file: string): Promise<Attempt> {
  return nodeAs<Attempt>(
    who,
    `try { return { ok: true, text: (await fs.readFile(input, "utf8")).slice(0, 4096) }; }
     catch (e) { return { ok: false, code: e.code }; }`,
    file,
  );
}

/** Tries to list a folder as the user. */
export function listAs(who: Identity, dir: string): Promise<Attempt> {
  return nodeAs<Attempt>(
    who,
    `try { return { ok: true, text: (await fs.readdir(input)).join("\\n") }; }
     catch (e) { return { ok: false, code: e.code }; }`,
    dir,
  );
}

/** Tries to open a file for writing as the user, without creating or truncating it. */
export function openForWriteAs(who: Identity, file: string): Promise<Attempt> {
  return nodeAs<Attempt>(
    who,
    `try { const h = await fs.open(input, fsSync.constants.O_WRONLY); await h.close(); return { ok: true }; }
     catch (e) { return { ok: false, code: e.code }; }`,
    file,
  );
}

/** Tries to connect to a unix socket as the user; "connected" only when the server accepted. */
export function connectUnixAs(who: Identity, socketPath: string): Promise<Attempt> {
  return nodeAs<Attempt>(
    who,
    `return await new Promise((resolve) => {
       const s = net.connect({ path: input });
       const t = setTimeout(() => { s.destroy(); resolve({ ok: false, code: "TIMEOUT" }); }, 3000);
       s.on("connect", () => { clearTimeout(t); s.destroy(); resolve({ ok: true }); });
       s.on("error", (e) => { clearTimeout(t); resolve({ ok: false, code: e.code }); });
     });`,
    socketPath,
  );
}

export interface HttpAttempt {
  ok: boolean;
  status?: number;
  body?: string;
  code?: string;
}

/** An HTTP request sent by the user's own process (not through nginx). */
export function httpAs(
  who: Identity,
  request: { port: number; path?: string; method?: string; headers?: Record<string, string> },
  timeoutMs = 20_000,
): Promise<HttpAttempt> {
  return nodeAs<HttpAttempt>(
    who,
    `return await new Promise((resolve) => {
       const req = http.request({ host: "127.0.0.1", port: input.port, path: input.path ?? "/",
         method: input.method ?? "GET", headers: input.headers ?? {}, agent: false, timeout: input.timeoutMs },
         (res) => { let body = ""; res.setEncoding("utf8"); res.on("data", (c) => { body += c; });
           res.on("end", () => resolve({ ok: true, status: res.statusCode, body: body.slice(0, 4096) }));
           res.on("error", (e) => resolve({ ok: false, code: e.code })); });
       req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
       req.on("error", (e) => resolve({ ok: false, code: e.code }));
       req.end();
     });`,
    { ...request, timeoutMs },
    { timeoutMs: timeoutMs + 5000 },
  );
}

/** A long-running process as some user, in its own process group, stopped by its pid. */
export interface Held {
  pid: number;
  /** Everything it printed on stdout so far. */
  output(): string;
  /** Waits until its stdout matches, and returns the match. */
  waitOutput(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Kills its process group and waits for it to be gone. */
  stop(): Promise<void>;
}

/** Starts an ES module body (see nodeAs) as the user and leaves it running. */
export function holdNodeAs(who: Identity, body: string, input: unknown = null): Held {
  const script = [
    'import fs from "node:fs";',
    'import path from "node:path";',
    'import net from "node:net";',
    'import http from "node:http";',
    "const input = JSON.parse(process.argv[1]);",
    body,
  ].join("\n");
  const child = spawn(
    process.execPath,
    ["--input-type=module", "-e", script, JSON.stringify(input)],
    {
      detached: true,
      cwd: "/",
      env: { PATH },
      stdio: ["ignore", "pipe", "pipe"],
      uid: who.uid,
      gid: who.gid,
    },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start a process as ${who.user}`);
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return {
    pid,
    output: () => out,
    waitOutput: (re, timeoutMs = 10_000) =>
      waitFor(
        `${who.user}'s process to print ${re} (stderr: ${err})`,
        () => re.exec(out) ?? undefined,
        timeoutMs,
      ),
    async stop() {
      killGroup(pid);
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      await waitFor(`pid ${pid} to exit`, () => (isAlive(pid) ? undefined : true), 5000);
    },
  };
}

/**
 * Tries for durationMs to bind 127.0.0.1:port as the user; once bound, answers every request
 * with the marker. Prints "bound PID" or "gave-up CODE".
 */
export function squat(who: Identity, port: number, marker: string, durationMs = 2000): Held {
  return holdNodeAs(
    who,
    `const deadline = Date.now() + input.durationMs;
     let last = "";
     const attempt = () => {
       const server = http.createServer((req, res) => res.end(input.marker));
       server.once("error", (e) => {
         last = e.code;
         if (Date.now() > deadline) { process.stdout.write("gave-up " + last + "\\n"); process.exit(0); }
         setTimeout(attempt, 20);
       });
       server.listen(input.port, "127.0.0.1", () => process.stdout.write("bound " + process.pid + "\\n"));
     };
     attempt();`,
    { port, marker, durationMs },
  );
}

/** Paths of the unix sockets bound under a folder: the kernel's list and the files on disk. */
export async function unixSocketsUnder(dir: string): Promise<string[]> {
  const found = new Set<string>();
  const table = await readFile("/proc/net/unix", "utf8");
  for (const line of table.split("\n").slice(1)) {
    const socketPath = line.trim().split(/\s+/)[7];
    if (socketPath?.startsWith(`${dir}/`)) found.add(socketPath);
  }
  async function walk(folder: string): Promise<void> {
    for (const entry of await readdir(folder, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(folder, entry.name);
      if (entry.isSocket()) found.add(full);
      else if (entry.isDirectory()) await walk(full);
    }
  }
  await walk(dir);
  return [...found].sort();
}

/** Owner, mode, size and content hash of a path (not following a last symlink), as root sees it. */
export interface PathState {
  exists: boolean;
  type?: "file" | "dir" | "link" | "other";
  uid?: number;
  gid?: number;
  mode?: number;
  size?: number;
  sha256?: string;
  /** Only with withTimes: a folder's changes when an entry came and went. */
  mtimeMs?: number;
}

export async function pathState(
  file: string,
  options: { withTimes?: boolean } = {},
): Promise<PathState> {
  try {
    const s = await lstat(file);
    const type = s.isSymbolicLink()
      ? "link"
      : s.isDirectory()
        ? "dir"
        : s.isFile()
          ? "file"
          : "other";
    const state: PathState = {
      exists: true,
      type,
      uid: s.uid,
      gid: s.gid,
      mode: s.mode & 0o7777,
      size: type === "dir" ? 0 : s.size,
      ...(options.withTimes ? { mtimeMs: s.mtimeMs } : {}),
    };
    if (type === "file" && s.size < 64 * 1024 * 1024)
      state.sha256 = createHash("sha256")
        .update(await readFile(file))
        .digest("hex");
    return state;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { exists: false };
    throw error;
  }
}

/** Every path under a folder (itself included, as "."), with its state. */
export async function treeState(
  dir: string,
  options: { withTimes?: boolean } = {},
): Promise<Record<string, PathState>> {
  const out: Record<string, PathState> = {};
  async function walk(rel: string): Promise<void> {
    const full = rel === "." ? dir : path.join(dir, rel);
    const state = await pathState(full, options);
    out[rel] = state;
    if (state.type !== "dir") return;
    for (const name of await readdir(full)) await walk(rel === "." ? name : `${rel}/${name}`);
  }
  await walk(".");
  return out;
}

/** What changed between two treeState snapshots, one line per path. */
export function treeChanges(
  before: Record<string, PathState>,
  after: Record<string, PathState>,
): string[] {
  const changes: string[] = [];
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = JSON.stringify(before[key] ?? { exists: false });
    const b = JSON.stringify(after[key] ?? { exists: false });
    if (a !== b) changes.push(`${key}: ${a} -> ${b}`);
  }
  return changes;
}

/**
 * A root-owned folder outside acc's home that no instance can write: anything that appears or
 * changes in it was done by root following a link the instance planted.
 */
export interface Trap {
  dir: string;
  /** A fresh path in the trap that does not exist. */
  fresh(name: string): string;
  /** A root-owned empty folder in the trap (a target for a planted folder link). */
  folder(name: string): Promise<string>;
  /** A root-only file (0600) holding a marker. */
  secret(name: string, marker: string): Promise<string>;
  /** Takes the trap's state as the reference. */
  seal(): Promise<void>;
  /** What changed since seal(). */
  changes(): Promise<string[]>;
  remove(): Promise<void>;
}

export async function makeTrap(): Promise<Trap> {
  const dir = path.join(os.tmpdir(), `acc-sx-trap-${randomBytes(6).toString("hex")}`);
  await mkdir(dir, { mode: 0o755 });
  let sealed: Record<string, PathState> = {};
  return {
    dir,
    fresh: (name) => path.join(dir, name),
    async folder(name) {
      const full = path.join(dir, name);
      await mkdir(full, { mode: 0o755 });
      return full;
    },
    async secret(name, marker) {
      const full = path.join(dir, name);
      await writeFile(full, marker, { mode: 0o600 });
      return full;
    },
    async seal() {
      sealed = await treeState(dir, { withTimes: true });
    },
    async changes() {
      return treeChanges(sealed, await treeState(dir, { withTimes: true }));
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A random marker text to plant and look for. */
export function marker(label: string): string {
  return `SX-${label}-${randomBytes(8).toString("hex")}`;
}

export interface Replacement {
  /** Path relative to the folder walked. */
  rel: string;
  target: string;
  dir: boolean;
}

/**
 * As the user, walks a folder and replaces each entry it may with a symlink into the trap:
 * files (mode "files": every non-folder entry at any depth) or folders (mode "dirs": the
 * highest folders it can replace; it goes deeper only where it could not). The original is
 * kept beside it as NAME.sx-orig. Returns what was replaced.
 */
export function replaceWithLinksAs(
  who: Identity,
  root: string,
  trapDir: string,
  mode: "files" | "dirs",
  /** Every replaced file points here instead of a fresh trap path, when given. */
  fileTarget?: string,
): Promise<{ replaced: Replacement[]; refused: string[] }> {
  return nodeAs(
    who,
    `const replaced = [], refused = [];
     const replace = async (full, rel, target, dir) => {
       try { await fs.rename(full, full + ".sx-orig"); }
       catch (e) { refused.push(rel + ": " + e.code); return false; }
       try { await fs.symlink(target, full); }
       catch (e) { refused.push(rel + ": symlink " + e.code); await fs.rename(full + ".sx-orig", full).catch(() => {}); return false; }
       replaced.push({ rel, target, dir });
       return true;
     };
     const walk = async (folder, rel) => {
       let entries;
       try { entries = await fs.readdir(folder, { withFileTypes: true }); }
       catch (e) { refused.push((rel || ".") + "/: " + e.code); return; }
       for (const e of entries) {
         if (e.name.endsWith(".sx-orig")) continue;
         const r = rel ? rel + "/" + e.name : e.name;
         const full = path.join(folder, e.name);
         const flat = r.replaceAll("/", "__");
         if (e.isDirectory()) {
           if (input.mode === "dirs" && await replace(full, r, path.join(input.trap, flat + ".d"), true)) continue;
           await walk(full, r);
         } else if (input.mode === "files") {
           await replace(full, r, input.fileTarget ?? path.join(input.trap, flat), false);
         }
       }
     };
     await walk(input.root, "");
     return { replaced, refused };`,
    { root, trap: trapDir, mode, fileTarget: fileTarget ?? null },
  );
}

/** As the user, puts back what replaceWithLinksAs replaced (best effort). */
export async function undoLinksAs(
  who: Identity,
  root: string,
  replaced: Replacement[],
): Promise<void> {
  await nodeAs(
    who,
    `for (const r of input.replaced.reverse()) {
       const full = path.join(input.root, r.rel);
       await fs.rm(full, { force: true }).catch(() => {});
       await fs.rename(full + ".sx-orig", full).catch(() => {});
     }
     return true;`,
    { root, replaced },
  );
}

/** The pid of a process whose pid file root wrote (nginx's, Postgres's postmaster.pid). */
export async function pidFromFile(file: string): Promise<number> {
  const pid = Number((await readFile(file, "utf8")).split("\n")[0]?.trim());
  if (!(pid > 0)) throw new Error(`no pid in ${file}`);
  return pid;
}

/** Real uid and parent pid of a process, from /proc. */
export async function processInfo(pid: number): Promise<{ uid: number; ppid: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return {
    uid: Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]),
    ppid: Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]),
  };
}

/** Pids of the direct children of a process. */
export async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await processInfo(Number(entry))).ppid === pid) out.push(Number(entry));
    } catch {
      // it ended while we looked
    }
  }
  return out;
}

/** The user nginx's workers run as: the owner of the master's children. */
export async function nginxWorkerIdentity(acc: AccHome): Promise<Identity> {
  const master = await pidFromFile(path.join(acc.home, "run/nginx.pid"));
  const workers = await waitFor(
    "nginx's workers",
    async () => {
      const found = await childrenOf(master);
      return found.length > 0 ? found : undefined;
    },
    10_000,
  );
  return userIdentity((await processInfo(workers[0] ?? 0)).uid);
}

/** As the user, creates each link -> target; says for each whether it could. */
export function symlinksAs(
  who: Identity,
  links: { link: string; target: string }[],
): Promise<(Attempt & { link: string })[]> {
  return nodeAs(
    who,
    `const out = [];
     for (const { link, target } of input) {
       try { await fs.symlink(target, link); out.push({ link, ok: true }); }
       catch (e) { out.push({ link, ok: false, code: e.code }); }
     }
     return out;`,
    links,
  );
}

/** Fails under CI when not root, else a skip reason: instance users exist only as root. */
export function requireRoot(): string | false {
  if (process.getuid?.() === 0) return false;
  if (process.env.CI === "true") throw new Error("the security suite must run as root");
  return "the security suite runs as root (instances have their own users only then)";
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** test/fixtures/models in the source tree (the compiled harness is under dist/). */
export const FIXTURE_MODELS = path.resolve(here, "../../../test/fixtures/models");

/** A fresh home with the given fixture models, booted; removed with everything after the test. */
export async function bootHome(t: TestContext, models: string[]): Promise<AccHome> {
  const acc = await createAccHome();
  t.after(() => acc.cleanup());
  for (const model of models)
    await cp(path.join(FIXTURE_MODELS, model), path.join(acc.home, "models", model), {
      recursive: true,
    });
  await accOk(acc, ["boot"], { timeoutMs: 120_000 });
  return acc;
}

export interface InstanceView {
  name: string;
  state: string;
  port: number;
}

export async function instanceView(acc: AccHome, name: string): Promise<InstanceView> {
  return JSON.parse(await accOk(acc, ["show", name, "--json"])) as InstanceView;
}

/** How many starts the instance's events record (woken or not). */
export async function startCount(acc: AccHome, name: string): Promise<number> {
  const events = JSON.parse(await accOk(acc, ["events", name, "-n", "10000", "--json"])) as {
    action: string;
  }[];
  return events.filter((e) => e.action === "start").length;
}

/** `acc backup NAME` and the backup's id (NAME/TIMESTAMP) and folder. */
export async function backupOf(
  acc: AccHome,
  name: string,
  options: { timeoutMs?: number } = {},
): Promise<{ id: string; dir: string }> {
  const { backup } = JSON.parse(await accOk(acc, ["backup", name, "--json"], options)) as {
    backup: string;
  };
  return { id: path.relative(path.join(acc.home, "backups"), backup), dir: backup };
}

/** A trap removed after the test. */
export async function trapFor(t: TestContext): Promise<Trap> {
  const trap = await makeTrap();
  t.after(() => trap.remove());
  return trap;
}

/** An instance of the echo fixture model, created stopped, with its user and folders. */
export async function echoInstance(
  acc: AccHome,
  name: string,
  options: { ranOnce?: boolean } = {},
): Promise<{ who: Identity; root: string; data: string }> {
  await accOk(acc, ["create", "echo", "--name", name, "--no-start"]);
  if (options.ranOnce) {
    // What a real instance has: the files its first run left (its log, say).
    await accOk(acc, ["start", name]);
    await accOk(acc, ["stop", name]);
  }
  const root = path.join(acc.home, "instances", name);
  const who = await instanceIdentity(name);
  const data = path.join(root, "data");
  if (options.ranOnce) {
    // And what an app keeps in its data: a file and a folder.
    await nodeAs(
      who,
      `await fs.mkdir(path.join(input, "uploads"), { recursive: true });
       await fs.writeFile(path.join(input, "uploads/photo.jpg"), "jpg");
       await fs.writeFile(path.join(input, "app.db"), "db");
       return true;`,
      data,
    );
  }
  return { who, root, data };
}

/** The content of every regular file in a .tar.gz, as root reads it. */
export async function archiveText(archive: string): Promise<string> {
  const run = await runProcess("tar", ["--extract", "--gzip", "--to-stdout", "--file", archive], {
    timeoutMs: 30_000,
  });
  return run.stdout;
}
