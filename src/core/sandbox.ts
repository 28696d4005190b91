// The sandbox an instance runs in (design.md, "Users and privileges"): bubblewrap's arguments,
// made from plain data so that what an instance can see is readable in one place and tested
// without running anything.

/** What of the host's root folder the sandbox reproduces, read once from the host. */
export interface HostLayout {
  /** Top-level folders that are symlinks here (a merged /usr: /bin -> usr/bin): name and target. */
  links: readonly { path: string; target: string }[];
  /** Top-level system folders that are real folders here (/bin on a system without merged /usr). */
  dirs: readonly string[];
  /**
   * Read-only extras the runtime needs: node's own prefix when it is not under /usr, the folder
   * resolv.conf points into (systemd-resolved). Bound when they exist.
   */
  extraReadOnly: readonly string[];
}

export interface SandboxSpec {
  bwrap: string;
  host: HostLayout;
  /** HOME/instances/NAME: bound read-only (its env and config are there). */
  instanceRoot: string;
  /** Its data folder, the only place it can write besides its private /tmp. */
  dataDir: string;
  /** The model's code, read-only. */
  codeDir: string;
  /** Extra paths the model declares ([sandbox] read_only / read_write). */
  readOnly: readonly string[];
  readWrite: readonly string[];
}

/** Top-level folders of a Debian system that hold programs and libraries. */
export const SYSTEM_DIRS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] as const;

/**
 * bubblewrap's arguments, ending with "--": the instance gets its own mount, PID, IPC and UTS
 * namespaces and a user namespace that maps its own uid only (no capabilities, no_new_privs,
 * no further user namespaces); it sees /usr and /etc read-only, its code read-only, its own
 * folder (read-only but for data/), a private /tmp, and none of the rest of acc's home: no
 * other instance's files, sockets or processes. The network is the host's (loopback included):
 * instances reach Postgres and the internet, and nginx reaches them.
 */
export function sandboxArgs(spec: SandboxSpec): string[] {
  const args = [
    spec.bwrap,
    "--unshare-user",
    "--disable-userns",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    // The app leads its own session (and process group): acc stops it by signalling that group.
    "--new-session",
    "--die-with-parent",
    "--ro-bind",
    "/usr",
    "/usr",
  ];
  for (const link of spec.host.links) args.push("--symlink", link.target, link.path);
  for (const dir of spec.host.dirs) args.push("--ro-bind", dir, dir);
  args.push(
    "--ro-bind",
    "/etc",
    "/etc",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "--tmpfs",
    "/var/tmp",
    "--tmpfs",
    "/run",
  );
  for (const extra of spec.host.extraReadOnly) args.push("--ro-bind-try", extra, extra);
  args.push("--ro-bind", spec.codeDir, spec.codeDir);
  args.push("--ro-bind", spec.instanceRoot, spec.instanceRoot);
  args.push("--bind", spec.dataDir, spec.dataDir);
  for (const dir of spec.readOnly) args.push("--ro-bind", dir, dir);
  for (const dir of spec.readWrite) args.push("--bind", dir, dir);
  args.push("--chdir", spec.codeDir, "--");
  return args;
}

// Characters that mean nothing to /bin/sh: a command made only of them, split on spaces, runs
// the same without a shell.
const PLAIN_WORD = /^[A-Za-z0-9_./:,@%+-][A-Za-z0-9_./:,@%+=-]*$/;

/**
 * The argv that runs a model's command line: the words themselves when the shell would do
 * nothing but split them (one exec less, and the app's pid is known for LISTEN_PID), else
 * `/bin/sh -c COMMAND`, run as written.
 */
export function commandArgv(command: string): { argv: string[]; direct: boolean } {
  const words = command.trim().split(/ +/);
  // NAME=value first is an assignment for the shell, not a program.
  if (words.every((word) => PLAIN_WORD.test(word)) && !words[0]?.includes("=")) {
    return { argv: words, direct: true };
  }
  return { argv: ["/bin/sh", "-c", command], direct: false };
}

/** What acc-launch needs to start an instance (libexec/acc-launch reads it). */
export interface LaunchSpec {
  /** Node's process.arch: picks the syscall numbers. */
  arch: string;
  /** Root homes: the instance's user and group, which acc-launch drops to. */
  uid?: number;
  gid?: number;
  envFile: string;
  chdir: string;
  /** The instance's port: handed over (socket activation) or lent to the app, via acc-ports. */
  port?: { port: number; mode: "activate" | "lend" };
  /** acc-ports' control socket. */
  keeper?: string;
  /** bubblewrap and its arguments (sandboxArgs), or none. */
  sandbox?: readonly string[];
  run: readonly string[];
  /** The model's setup step, run once at create. */
  setup?: readonly string[];
  /** The model's upgrade step, run once per instance by acc upgrade. */
  upgrade?: readonly string[];
  /** LISTEN_PID for socket activation: the app's pid, when acc-launch can know it. */
  listenPid?: "self" | number;
  /** The instance's cgroup folders, which acc-launch joins first (every child inherits them). */
  cgroups?: readonly string[];
}

/** acc-launch's spec file: one "key word..." line per setting, each word percent-encoded. */
export function renderLaunchSpec(spec: LaunchSpec): string {
  const lines: string[] = [
    "# Written by acc for libexec/acc-launch: changes here are overwritten.",
  ];
  const line = (key: string, words: readonly (string | number)[]): void => {
    if (words.length === 0) throw new Error(`bug: empty launch setting ${key}`);
    lines.push([key, ...words.map((word) => encodeWord(String(word)))].join(" "));
  };
  line("arch", [spec.arch]);
  if (spec.cgroups && spec.cgroups.length > 0) line("cgroup", spec.cgroups);
  if (spec.uid !== undefined || spec.gid !== undefined) {
    if (!isId(spec.uid) || !isId(spec.gid)) throw new Error("bug: launch spec without uid or gid");
    line("uid", [spec.uid]);
    line("gid", [spec.gid]);
  }
  line("env", [spec.envFile]);
  line("chdir", [spec.chdir]);
  if (spec.port) line("port", [spec.port.port, spec.port.mode]);
  if (spec.keeper !== undefined) line("keeper", [spec.keeper]);
  if (spec.listenPid !== undefined) line("listen_pid", [spec.listenPid]);
  if (spec.sandbox) line("sandbox", spec.sandbox);
  line("run", spec.run);
  if (spec.setup) line("setup", spec.setup);
  if (spec.upgrade) line("upgrade", spec.upgrade);
  return `${lines.join("\n")}\n`;
}

function isId(value: number | undefined): value is number {
  return value !== undefined && Number.isSafeInteger(value) && value > 0;
}

/**
 * Percent-encodes what would end a word or a line (ASCII space and controls, and % itself); the
 * rest, UTF-8 included, stays as it is (acc-launch reads bytes and splits on spaces only).
 */
export function encodeWord(word: string): string {
  return word.replace(
    // eslint-disable-next-line no-control-regex -- control characters are what is encoded
    /[%\x00-\x20\x7f]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`,
  );
}
