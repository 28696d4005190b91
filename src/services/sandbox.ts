// Whether instances can run in a sandbox here, and what of the host it reproduces. The sandbox
// itself is core/sandbox.ts; acc-launch (libexec) runs it.
import { lstat, readlink, realpath } from "node:fs/promises";
import path from "node:path";
import { SYSTEM_DIRS, type HostLayout } from "../core/sandbox.js";
import { hasErrno } from "../lib/errors.js";
import { ExecError } from "../lib/exec.js";
import { pathExists, readFileIfExists, writeFileAtomic } from "../lib/files.js";
import type { AccContext } from "./context.js";

export const BWRAP = "/usr/bin/bwrap";

export interface SandboxState {
  /** Instances run in bubblewrap. */
  enabled: boolean;
  /** Why not, when they do not. */
  reason?: string;
  /** acc.toml's `sandbox` when this was found: a change makes acc look again. */
  config: "auto" | "off";
}

/** The host's top-level layout the sandbox copies: a merged /usr has symlinks, an old one folders. */
export async function readHostLayout(execPath = process.execPath): Promise<HostLayout> {
  const links: { path: string; target: string }[] = [];
  const dirs: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    try {
      const info = await lstat(dir);
      if (info.isSymbolicLink()) links.push({ path: dir, target: await readlink(dir) });
      else if (info.isDirectory()) dirs.push(dir);
    } catch (error) {
      if (!hasErrno(error, "ENOENT")) throw error;
    }
  }
  const extraReadOnly: string[] = [];
  // node outside /usr (a tarball in /opt, say): its whole prefix, read-only.
  const node = await realpath(execPath);
  if (!node.startsWith("/usr/")) extraReadOnly.push(path.dirname(path.dirname(node)));
  // systemd-resolved: /etc/resolv.conf points into /run, which the sandbox does not share.
  try {
    const resolv = await realpath("/etc/resolv.conf");
    if (resolv.startsWith("/run/")) extraReadOnly.push(path.dirname(resolv));
  } catch (error) {
    if (!hasErrno(error, "ENOENT")) throw error;
  }
  return { links, dirs, extraReadOnly };
}

function stateFile(ctx: AccContext): string {
  return path.join(ctx.paths.run, "sandbox.json");
}

/**
 * Tries bubblewrap as an instance would run it (an unprivileged user, a user namespace), and
 * records the answer for creates and `acc status` (boot runs it).
 */
export async function probeSandbox(ctx: AccContext): Promise<SandboxState> {
  const config = ctx.config.sandbox;
  let state: SandboxState;
  if (config === "off") {
    state = { enabled: false, reason: "sandbox = off in acc.toml", config };
  } else if (!(await pathExists(BWRAP))) {
    state = {
      enabled: false,
      reason: `${BWRAP} is not installed (Debian package bubblewrap)`,
      config,
    };
  } else {
    try {
      await ctx.exec(
        BWRAP,
        [
          "--unshare-user",
          "--disable-userns",
          "--unshare-pid",
          "--ro-bind",
          "/",
          "/",
          "--proc",
          "/proc",
          "--",
          "/bin/true",
        ],
        // As root, the probe runs as nobody: acc-launch drops to the instance's user first.
        { timeoutMs: 10_000, ...(ctx.isRoot ? { uid: 65534, gid: 65534 } : {}), cwd: "/" },
      );
      state = { enabled: true, config };
    } catch (error) {
      if (!(error instanceof ExecError)) throw error;
      const why = error.stderr.trim().split("\n").at(-1) ?? error.message;
      state = { enabled: false, reason: `bubblewrap does not run here: ${why}`, config };
    }
  }
  await writeFileAtomic(stateFile(ctx), `${JSON.stringify(state)}\n`, { mode: 0o600 });
  return state;
}

/** The recorded answer of probeSandbox, probing when there is none yet. */
export async function sandboxState(ctx: AccContext): Promise<SandboxState> {
  ctx.cache.sandbox ??= (async () => {
    const text = await readFileIfExists(stateFile(ctx));
    if (text !== undefined) {
      try {
        const saved = JSON.parse(text) as SandboxState;
        if (saved.config === ctx.config.sandbox) return saved;
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw error;
      }
    }
    return probeSandbox(ctx);
  })();
  return ctx.cache.sandbox;
}
