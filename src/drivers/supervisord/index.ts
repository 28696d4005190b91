import { chmod, lstat, open, readdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import type { HomePaths } from "../../core/paths.js";
import { escapeUntrusted } from "../../core/untrusted-text.js";
import { AccError, hasErrno } from "../../lib/errors.js";
import { ExecError, type Exec } from "../../lib/exec.js";
import {
  ensureDir,
  ensureDirMode,
  readDirIfExists,
  readFileIfExists,
  writeFileAtomic,
} from "../../lib/files.js";
import { processGone, processName, processTree, signalProcess } from "../../lib/processes.js";
import { createSupervisorClient, FAULT, isFault, type SupervisorClient } from "./client.js";
import {
  childLogDir,
  programName,
  renderProgram,
  renderSupervisordConf,
  type InstanceProgram,
  type ServiceProgram,
} from "./render.js";
import { isStruct, type XmlRpcStruct, type XmlRpcValue } from "./xmlrpc.js";

export { programName, renderProgram, renderSupervisordConf } from "./render.js";
export type { InstanceProgram, ServiceProgram } from "./render.js";
export { FAULT, SupervisorFault, isFault } from "./client.js";

/** How many stopped programs stay loaded for fast starts before stops unload them. */
const KEEP_LOADED = 100;

export interface SupervisorDeps {
  paths: HomePaths;
  exec: Exec;
  /** Milliseconds for each RPC call and for supervisord to start answering; default 10 s. */
  timeoutMs?: number;
  /** Default "supervisord", found on PATH. */
  supervisordBin?: string;
}

/** What supervisord says about one program. */
export interface ProgramState {
  /** supervisord's state name: STOPPED, STARTING, RUNNING, STOPPING, EXITED, FATAL, ... */
  state: string;
  /** 0 when not running. */
  pid: number;
  exitStatus: number;
  description: string;
  /** Why the last spawn failed, such as a missing command; empty otherwise. */
  spawnError: string;
}

export interface StopOptions {
  /** Destroy: unload it from supervisord whatever the count. */
  unload?: boolean;
  /**
   * Every process of the instance (its cgroup's): they get the SIGTERM too, and the stop waits
   * for them all, detached children included, not only for the program's own process.
   */
  members?: () => Promise<number[]>;
}

export interface StopResult {
  /** Something still ran at the stop timeout and got SIGKILL. */
  killed: boolean;
}

export type ServiceSignal = "HUP" | "USR1" | "USR2" | "TERM" | "QUIT" | "INT" | "WINCH";

export interface Supervisor {
  writeMainConfig(programs: readonly ServiceProgram[]): Promise<void>;
  isRunning(): Promise<boolean>;
  start(): Promise<void>;
  /** Stops supervisord and everything it runs; waits up to timeoutMs (default 60 s) for it to exit. */
  shutdown(options?: { timeoutMs?: number }): Promise<void>;
  writeProgram(spec: InstanceProgram): Promise<void>;
  /** Starts the instance's program; resolves with its pid, or 0 when not asked for (fast path). */
  startProgram(name: string): Promise<number>;
  /**
   * Stops the instance. It stays loaded in supervisord (its next start is one call) while
   * few programs are loaded; `unload` (destroy) or many loaded ones unload it.
   */
  stopProgram(name: string, options?: StopOptions): Promise<StopResult>;
  /** Stops one of acc's service programs (acc-postgres) and waits until it has exited. */
  stopService(name: string): Promise<void>;
  /** Starts one of acc's service programs, unless it runs already. */
  startService(name: string): Promise<void>;
  /** The supervisord state of one of acc's service programs (RUNNING, BACKOFF...); null when not loaded. */
  serviceState(name: string): Promise<string | null>;
  /** A running supervisord loads acc's service programs as the main config now says. */
  updateServices(): Promise<{ added: string[]; changed: string[]; removed: string[] }>;
  removeProgram(name: string): Promise<void>;
  programState(name: string): Promise<ProgramState | null>;
  allProgramStates(): Promise<Map<string, ProgramState>>;
  signalService(name: string, signal: ServiceSignal): Promise<void>;
  tailLog(name: string, bytes: number): Promise<string>;
}

const POLL_MS = 25;
/** The file limit supervisord and what it runs get, when the hard limit allows. */
const FILE_LIMIT = 65536;
// States in which supervisord holds no process for a program (supervisor/states.py).
const STOPPED_STATES = new Set(["STOPPED", "EXITED", "FATAL", "UNKNOWN"]);

export function createSupervisor(deps: SupervisorDeps): Supervisor {
  const { paths } = deps;
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const rpc: SupervisorClient = createSupervisorClient({
    socketPath: paths.supervisorSocket,
    timeoutMs,
  });
  const programFile = (name: string): string => `${paths.programs}/${checked(name)}.conf`;
  const activeFile = (name: string): string => `${paths.programsActive}/${checked(name)}.conf`;

  /** supervisord's own state name, or undefined when nothing answers on the socket. */
  async function supervisorState(): Promise<string | undefined> {
    try {
      return str(asStruct(await rpc.call("supervisor.getState")), "statename");
    } catch (error) {
      if (error instanceof AccError && error.code === "ACC_NOT_BOOTED") return undefined;
      throw error;
    }
  }

  async function logTail(file: string, bytes: number): Promise<string> {
    let handle;
    try {
      handle = await open(file, "r");
    } catch (error) {
      if (hasErrno(error, "ENOENT")) return "";
      throw error;
    }
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, bytes);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString("utf8");
    } finally {
      await handle.close();
    }
  }

  async function instanceLogFile(name: string): Promise<string> {
    const conf = await readFileIfExists(programFile(name));
    if (conf === undefined) {
      throw new AccError("ACC_NOT_FOUND", `no supervisord program file for instance ${name}`, {
        hint: "run acc doctor",
      });
    }
    return confValue(conf, "stdout_logfile");
  }

  async function startFailed(name: string, message: string, cause?: unknown): Promise<AccError> {
    const log = await logTail(await instanceLogFile(name), 4096);
    return new AccError("ACC_START_FAILED", `instance ${name}: ${message}`, {
      cause,
      // What the app printed: escaped, it is shown on the sysadmin's terminal.
      details: escapeUntrusted(log.split("\n").slice(-20).join("\n"), { keepLines: true }),
    });
  }

  async function programState(name: string): Promise<ProgramState | null> {
    const group = programName(name);
    try {
      return toProgramState(
        asStruct(await rpc.call("supervisor.getProcessInfo", [`${group}:${group}`])),
      );
    } catch (error) {
      if (isFault(error, FAULT.BAD_NAME)) return null;
      throw error;
    }
  }

  async function stopProgram(name: string, options: StopOptions = {}): Promise<StopResult> {
    const group = programName(name);
    const conf =
      (await readFileIfExists(activeFile(name))) ?? (await readFileIfExists(programFile(name)));
    const stopWaitSecs = conf === undefined ? 0 : Number(confValue(conf, "stopwaitsecs"));
    // acc asks the app to end, not supervisord: the process supervisord started is the
    // sandbox's (bubblewrap), which a SIGTERM would end at once, killing the app with it.
    const killed = await terminate(name, stopWaitSecs * 1000, options.members);
    // Whatever is left gets SIGKILL (the program's stopsignal), the whole group at once.
    try {
      await rpc.call("supervisor.stopProcess", [`${group}:${group}`, true], {
        timeoutMs: stopWaitSecs * 1000 + timeoutMs,
      });
    } catch (error) {
      if (isFault(error, FAULT.FAILED)) {
        throw new AccError(
          "ACC_STOP_FAILED",
          `instance ${name} did not stop: ${error.faultString}`,
          {
            cause: error,
          },
        );
      }
      // supervisord down: nothing runs under it, so there is nothing to stop or unload.
      if (error instanceof AccError && error.code === "ACC_NOT_BOOTED") {
        await rm(activeFile(name), { force: true });
        return { killed };
      }
      if (!isFault(error, FAULT.NOT_RUNNING, FAULT.BAD_NAME)) throw error;
    }
    // Each loaded program makes reloadConfig (the slow path of a start) ~0.5 ms slower.
    const loaded = (await readdir(paths.programsActive).catch(() => [])).length;
    if (!options.unload && loaded <= KEEP_LOADED) return { killed };
    try {
      await rpc.call("supervisor.removeProcessGroup", [group]);
    } catch (error) {
      if (isFault(error, FAULT.STILL_RUNNING)) {
        // Another stop is under way (the process is STOPPING): wait for it, then remove.
        await pollUntil(`instance ${name} to stop`, stopWaitSecs * 1000 + timeoutMs, async () => {
          const state = await programState(name);
          return state === null || STOPPED_STATES.has(state.state);
        });
        await removeGroup(group);
      } else if (!isFault(error, FAULT.BAD_NAME)) {
        throw error;
      }
    }
    await rm(activeFile(name), { force: true });
    return { killed };
  }

  /**
   * SIGTERM to every process of the instance's program (and its other members) but
   * bubblewrap's own (which pass nothing on and would take the app down with them), then waits
   * up to timeoutMs for them to end. True when something still runs at the deadline.
   */
  async function terminate(
    name: string,
    timeoutMs: number,
    members?: () => Promise<number[]>,
  ): Promise<boolean> {
    let state: ProgramState | null;
    try {
      state = await programState(name);
    } catch (error) {
      if (error instanceof AccError && error.code === "ACC_NOT_BOOTED") state = null;
      else throw error;
    }
    const running = state !== null && state.pid !== 0 && !STOPPED_STATES.has(state.state);
    const root = running && state ? state.pid : 0;
    const targets = new Set(root > 0 ? await processTree(root) : []);
    for (const pid of (await members?.()) ?? []) targets.add(pid);
    if (targets.size === 0) return false;
    for (const pid of targets) {
      if ((await processName(pid)) !== "bwrap") signalProcess(pid, "SIGTERM");
    }
    const deadline = Date.now() + timeoutMs;
    const done = async (): Promise<boolean> =>
      (root === 0 || (await processGone(root))) && ((await members?.())?.length ?? 0) === 0;
    while (!(await done())) {
      if (Date.now() >= deadline) return true;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return false;
  }

  // reloadConfig re-reads every active file (about 0.6 ms each), so starts that arrive while one
  // runs share the next one instead of queueing a reload each. A start never shares a reload
  // that began before its file was written.
  let reloadRunning: Promise<string[]> | undefined;
  let reloadNext: Promise<string[]> | undefined;
  function reloadConfig(): Promise<string[]> {
    if (reloadRunning === undefined) {
      reloadRunning = callReloadConfig().finally(() => {
        reloadRunning = undefined;
      });
      return reloadRunning;
    }
    reloadNext ??= reloadRunning
      // Only the order matters here: that reload's failure goes to its own callers.
      .catch(() => undefined)
      .then(() => {
        reloadNext = undefined;
        return reloadConfig();
      });
    return reloadNext;
  }

  /**
   * Makes a running supervisord load acc's own service programs as the main config now says
   * (an upgrade adds acc-server or acc-postgres, a new port changes a command): like
   * `supervisorctl update`, for the service programs only (instances are loaded on start).
   */
  async function updateServices(): Promise<{
    added: string[];
    changed: string[];
    removed: string[];
  }> {
    const result = asArray(asArray(await rpc.call("supervisor.reloadConfig"))[0]);
    const services = (index: number): string[] =>
      strings(result[index]).filter((name) => !name.startsWith("i-"));
    const [added, changed, removed] = [services(0), services(1), services(2)];
    for (const name of [...changed, ...removed]) {
      try {
        await rpc.call("supervisor.stopProcessGroup", [name, true], { timeoutMs: 120_000 });
      } catch (error) {
        if (!isFault(error, FAULT.BAD_NAME, FAULT.NOT_RUNNING)) throw error;
      }
      await rpc.call("supervisor.removeProcessGroup", [name]);
    }
    for (const name of [...changed, ...added]) await rpc.call("supervisor.addProcessGroup", [name]);
    return { added, changed, removed };
  }

  /** The groups whose loaded config differs from their file. */
  async function callReloadConfig(): Promise<string[]> {
    try {
      const result = await rpc.call("supervisor.reloadConfig");
      // The answer is [[added, changed, removed]].
      return strings(asArray(asArray(result)[0])[1]);
    } catch (error) {
      if (isFault(error, FAULT.CANT_REREAD)) {
        throw new AccError(
          "ACC_SUPERVISOR",
          `supervisord cannot read its config: ${error.faultString}`,
          {
            cause: error,
            hint: "run acc doctor",
          },
        );
      }
      throw error;
    }
  }

  async function removeGroup(group: string): Promise<void> {
    try {
      await rpc.call("supervisor.removeProcessGroup", [group]);
    } catch (error) {
      if (!isFault(error, FAULT.BAD_NAME)) throw error;
    }
  }

  return {
    async writeMainConfig(programs) {
      // Root's alone: program files, sockets, and logs that hold every instance's output.
      for (const dir of [
        paths.supervisor,
        childLogDir(paths),
        paths.run,
        paths.programs,
        paths.programsActive,
      ]) {
        await ensureDirMode(dir, 0o700);
      }
      for (const dir of [paths.supervisor, childLogDir(paths)]) {
        for (const file of await readDirIfExists(dir)) {
          const full = `${dir}/${file}`;
          if ((await lstat(full)).isFile()) await chmod(full, 0o600);
        }
      }
      for (const program of programs) await ensureDir(dirname(program.logFile));
      const conf = renderSupervisordConf({ paths, programs });
      await writeFileAtomic(paths.supervisorConf, conf);
    },

    async isRunning() {
      const state = await supervisorState();
      return state !== undefined && state !== "SHUTDOWN";
    },

    updateServices,

    async stopService(name) {
      try {
        // Longer than any service's stopwaitsecs, after which supervisord kills it.
        await rpc.call("supervisor.stopProcess", [`${checkedService(name)}:${name}`, true], {
          timeoutMs: 120_000,
        });
      } catch (error) {
        if (!isFault(error, FAULT.NOT_RUNNING, FAULT.BAD_NAME)) throw error;
      }
    },

    async startService(name) {
      try {
        await rpc.call("supervisor.startProcess", [`${checkedService(name)}:${name}`, true], {
          timeoutMs: 60_000,
        });
      } catch (error) {
        if (!isFault(error, FAULT.ALREADY_STARTED)) throw error;
      }
    },

    async serviceState(name) {
      try {
        const info = asStruct(
          await rpc.call("supervisor.getProcessInfo", [`${checkedService(name)}:${name}`]),
        );
        return str(info, "statename");
      } catch (error) {
        if (isFault(error, FAULT.BAD_NAME)) return null;
        throw error;
      }
    },

    async start() {
      const state = await supervisorState();
      if (state === "SHUTDOWN") {
        // A shutdown is under way: the socket goes away once it is done.
        await pollUntil(
          "the previous supervisord to exit",
          60_000,
          async () => (await supervisorState()) === undefined,
        );
      } else if (state !== undefined) {
        return;
      }
      const bin = deps.supervisordBin ?? "supervisord";
      try {
        // Without nodaemon, supervisord binds its socket, forks and the parent exits. Its file
        // limit, which nginx, acc server (a herd of held requests) and many running programs
        // need, is raised here rather than with minfds: supervisord closes every descriptor up
        // to minfds before each spawn, 100 ms per instance start at 32,768.
        await deps.exec(
          "/bin/sh",
          [
            "-c",
            `ulimit -n ${FILE_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`,
            "supervisord",
            bin,
            "-c",
            paths.supervisorConf,
          ],
          { timeoutMs },
        );
      } catch (error) {
        // sh says 127 when it cannot find the program.
        if (error instanceof ExecError && error.exitCode === 127) {
          throw new AccError("ACC_ENV", `${bin} is not installed`, {
            cause: error,
            hint: "install the Debian package supervisor (acc init does)",
          });
        }
        // Another acc process may have started it a moment earlier.
        if (!(error instanceof ExecError) || (await supervisorState()) === undefined) {
          const log = await logTail(paths.supervisorLog, 4096);
          throw new AccError(
            "ACC_SUPERVISOR",
            `could not start supervisord: ${(error as Error).message}`,
            {
              cause: error,
              details: log.split("\n").slice(-20).join("\n"),
              hint: `its log: ${paths.supervisorLog}`,
            },
          );
        }
      }
      await pollUntil("supervisord to answer on its socket", timeoutMs, async () => {
        const now = await supervisorState();
        return now !== undefined && now !== "SHUTDOWN";
      });
    },

    async shutdown(options = {}) {
      let pid: number;
      try {
        // Asked over the socket rather than read from the pidfile, which may be stale.
        pid = num(await rpc.call("supervisor.getPID"));
      } catch (error) {
        if (error instanceof AccError && error.code === "ACC_NOT_BOOTED") return;
        throw error;
      }
      try {
        // supervisord's own shutdown stops one group per pass of its event loop (measured: 25 s
        // for 200 running programs); signalled all at once first, they stop side by side.
        await rpc.call("supervisor.stopAllProcesses", [false]);
        await rpc.call("supervisor.shutdown");
      } catch (error) {
        const gone = error instanceof AccError && error.code === "ACC_NOT_BOOTED";
        if (!gone && !isFault(error, FAULT.SHUTDOWN_STATE)) throw error;
      }
      const waitMs = options.timeoutMs ?? 60_000;
      await pollUntil(
        `supervisord (pid ${pid}) to exit`,
        waitMs,
        async () => await processGone(pid),
      );
    },

    async writeProgram(spec) {
      const conf = renderProgram(spec);
      await ensureDir(paths.programs);
      await ensureDir(dirname(spec.logFile));
      await writeFileAtomic(programFile(spec.name), conf);
    },

    async startProgram(name) {
      const group = programName(name);
      const conf = await readFileIfExists(programFile(name));
      if (conf === undefined) {
        throw new AccError("ACC_SUPERVISOR", `no supervisord program file for instance ${name}`, {
          hint: "run acc doctor",
        });
      }
      // supervisord refuses a whole reload when one log folder is missing, so keep it there.
      await ensureDir(dirname(confValue(conf, "stdout_logfile")));
      await ensureDir(paths.programsActive);
      // Fast path: still loaded from an earlier start with the same file, so no reloadConfig
      // (which re-reads every loaded program file) is needed: one call starts it.
      if ((await readFileIfExists(activeFile(name))) === conf) {
        try {
          // Each call costs a few ms of supervisord's time: the pid is not asked for here.
          await rpc.call("supervisor.startProcess", [`${group}:${group}`, false]);
          return 0;
        } catch (error) {
          if (isFault(error, FAULT.ALREADY_STARTED)) {
            const state = await programState(name);
            if (state !== null && state.pid !== 0) return state.pid;
          } else if (!isFault(error, FAULT.BAD_NAME)) {
            throw error;
          }
        }
      } else {
        await writeFileAtomic(activeFile(name), conf);
      }
      const changed = await reloadConfig();
      if (changed.includes(group)) {
        // Loaded with an older file: reload it, unless it runs (the new file then applies at
        // its next start, since stopProgram unloads it).
        try {
          await rpc.call("supervisor.removeProcessGroup", [group]);
        } catch (error) {
          if (!isFault(error, FAULT.STILL_RUNNING)) throw error;
        }
      }
      try {
        await rpc.call("supervisor.addProcessGroup", [group]);
      } catch (error) {
        if (!isFault(error, FAULT.ALREADY_ADDED)) throw error;
      }
      try {
        await rpc.call("supervisor.startProcess", [`${group}:${group}`, true]);
      } catch (error) {
        if (
          isFault(
            error,
            FAULT.SPAWN_ERROR,
            FAULT.NO_FILE,
            FAULT.NOT_EXECUTABLE,
            FAULT.ABNORMAL_TERMINATION,
          )
        ) {
          throw await startFailed(name, error.faultString, error);
        }
        if (!isFault(error, FAULT.ALREADY_STARTED)) throw error;
      }
      const state = await programState(name);
      if (state === null || state.pid === 0) {
        throw await startFailed(name, `exited at once (${state?.description ?? "not loaded"})`);
      }
      return state.pid;
    },

    stopProgram,

    async removeProgram(name) {
      await stopProgram(name, { unload: true });
      await rm(programFile(name), { force: true });
    },

    programState,

    async allProgramStates() {
      const states = new Map<string, ProgramState>();
      for (const info of asArray(await rpc.call("supervisor.getAllProcessInfo"))) {
        const struct = asStruct(info);
        const group = str(struct, "group");
        if (group.startsWith("i-") && str(struct, "name") === group) {
          states.set(group.slice(2), toProgramState(struct));
        }
      }
      return states;
    },

    async signalService(name, signal) {
      try {
        await rpc.call("supervisor.signalProcess", [`${checkedService(name)}:${name}`, signal]);
      } catch (error) {
        if (isFault(error, FAULT.BAD_NAME, FAULT.NOT_RUNNING, FAULT.BAD_SIGNAL)) {
          throw new AccError(
            "ACC_SUPERVISOR",
            `cannot send SIG${signal} to ${name}: ${error.faultString}`,
            {
              cause: error,
            },
          );
        }
        throw error;
      }
    },

    async tailLog(name, bytes) {
      // Read from the file rather than over RPC, so a stopped (unloaded) instance has logs too.
      return logTail(await instanceLogFile(name), bytes);
    },
  };
}

/** The name of one of acc's own service programs, once checked. */
function checkedService(name: string): string {
  if (name.startsWith("i-") || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new Error(`not an acc service program: ${JSON.stringify(name)}`);
  }
  return name;
}

/** The instance name, once checked: it becomes part of file paths. */
function checked(name: string): string {
  programName(name);
  return name;
}

/** A value from a file renderProgram wrote: one `key=value` line, % doubled. */
function confValue(conf: string, key: string): string {
  const match = new RegExp(`^${key}=(.*)$`, "m").exec(conf);
  if (match?.[1] === undefined) throw new Error(`no ${key} in a supervisord program file`);
  return match[1].replaceAll("%%", "%");
}

function toProgramState(info: XmlRpcStruct): ProgramState {
  return {
    state: str(info, "statename"),
    pid: num(info.pid),
    exitStatus: num(info.exitstatus),
    description: str(info, "description"),
    spawnError: str(info, "spawnerr"),
  };
}

function asStruct(value: XmlRpcValue): XmlRpcStruct {
  if (!isStruct(value))
    throw new Error(`expected a struct from supervisord, got ${JSON.stringify(value)}`);
  return value;
}

function asArray(value: XmlRpcValue | undefined): XmlRpcValue[] {
  if (!Array.isArray(value))
    throw new Error(`expected an array from supervisord, got ${JSON.stringify(value)}`);
  return value;
}

function strings(value: XmlRpcValue | undefined): string[] {
  return asArray(value).map((v) => {
    if (typeof v !== "string")
      throw new Error(`expected a string from supervisord, got ${JSON.stringify(v)}`);
    return v;
  });
}

function str(struct: XmlRpcStruct, key: string): string {
  const value = struct[key];
  if (typeof value !== "string") throw new Error(`expected a string ${key} from supervisord`);
  return value;
}

function num(value: XmlRpcValue | undefined): number {
  if (typeof value !== "number")
    throw new Error(`expected a number from supervisord, got ${JSON.stringify(value)}`);
  return value;
}

async function pollUntil(
  what: string,
  timeoutMs: number,
  done: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) {
      throw new AccError("ACC_SUPERVISOR", `timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
