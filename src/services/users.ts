import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import type { Exec } from "../lib/exec.js";
import { ExecError } from "../lib/exec.js";
import { allPids } from "../lib/processes.js";

export interface UserIds {
  uid: number;
  gid: number;
}

/**
 * System user for an instance. Linux user names stop at 32 characters and instance names
 * may have 40, so long names are cut and made unique with a hash of the whole name.
 */
export function instanceUserName(instance: string): string {
  const plain = `acc-${instance}`;
  if (plain.length <= 32) return plain;
  const hash = createHash("sha256").update(instance).digest("hex").slice(0, 8);
  return `acc-${instance.slice(0, 19)}-${hash}`;
}

export interface Users {
  lookup(user: string): Promise<UserIds | undefined>;
  /** Creates a system user with its own group and no login; idempotent. */
  ensure(user: string, home: string): Promise<UserIds>;
  /**
   * Creates the system user of one of acc's services (nginx's workers, Postgres): its own
   * group, no login, no home, an id from Debian's system range; idempotent.
   */
  ensureService(user: string): Promise<UserIds>;
  /** Removes the user and its group; idempotent. */
  remove(user: string): Promise<void>;
}

export function createUsers({ exec }: { exec: Exec }): Users {
  async function lookup(user: string): Promise<UserIds | undefined> {
    try {
      const { stdout } = await exec("getent", ["passwd", user], { timeoutMs: 10_000 });
      const fields = stdout.trim().split(":");
      return { uid: Number(fields[2]), gid: Number(fields[3]) };
    } catch (error) {
      // getent exits 2 when the key is not found.
      if (error instanceof ExecError && error.exitCode === 2) return undefined;
      throw error;
    }
  }

  /** A system user with its own group, no login and no home folder made; idempotent. */
  async function addSystemUser(user: string, home: string, limits: string[]): Promise<UserIds> {
    const existing = await lookup(user);
    if (existing) return existing;
    try {
      await exec(
        "useradd",
        [
          "--system",
          "--user-group",
          "--no-create-home",
          "--home-dir",
          home,
          "--shell",
          "/usr/sbin/nologin",
          ...limits.flatMap((kv) => ["-K", kv]),
          user,
        ],
        { timeoutMs: 30_000 },
      );
    } catch (error) {
      // Another acc process (a second acc init, a test) made it meanwhile.
      if (!(error instanceof ExecError)) throw error;
      const made = await lookup(user);
      if (made) return made;
      throw error;
    }
    const created = await lookup(user);
    if (!created) throw new Error(`useradd ${user} succeeded but the user is not there`);
    return created;
  }

  return {
    lookup,
    ensure: (user, home) =>
      addSystemUser(user, home, [
        // Debian's system id range (100-999) holds fewer users than a server holds instances.
        "SYS_UID_MIN=100000",
        "SYS_UID_MAX=899999",
        "SYS_GID_MIN=100000",
        "SYS_GID_MAX=899999",
      ]),
    // acc's services take ids from Debian's own system range.
    ensureService: (user) => addSystemUser(user, "/nonexistent", []),
    async remove(user) {
      const ids = await lookup(user);
      if (!ids) return;
      // The user exists for one instance only: whatever still runs as it (a setup step left
      // behind by a crash, say) belongs to that instance and would make userdel fail.
      for (const pid of await pidsOfUser(ids.uid)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
        }
      }
      // SIGKILL is not instant: userdel refuses while a process of the user is still there.
      const deadline = Date.now() + 10_000;
      while ((await pidsOfUser(ids.uid)).length > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // --force: a zombie of the user that PID 1 has not reaped yet would make it refuse.
      await exec("userdel", ["--force", user], { timeoutMs: 30_000 });
    },
  };
}

/** Pids of the processes whose real user id is uid, read from /proc. */
export async function pidsOfUser(uid: number): Promise<number[]> {
  const pids: number[] = [];
  // A zombie runs nothing: it waits for its parent (or, orphaned, for PID 1) to reap it, which
  // can take a while where PID 1 is not a real init; it holds nothing of the user's.
  for (const pid of await allPids()) {
    let status: string;
    try {
      status = await readFile(`/proc/${pid}/status`, "utf8");
    } catch {
      continue; // the process ended while we looked
    }
    const real = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    if (/^State:\s+Z/m.test(status)) continue;
    if (real !== undefined && Number(real) === uid) pids.push(pid);
  }
  return pids;
}

/** Names by uid from the text of /etc/passwd (the first name of a uid wins, as getent's does). */
export function parsePasswd(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split("\n")) {
    const [name, , uid] = line.split(":");
    if (name === undefined || name === "" || uid === undefined || !/^\d{1,10}$/.test(uid)) continue;
    if (!names.has(Number(uid))) names.set(Number(uid), name);
  }
  return names;
}

/**
 * The names of these uids, those that have one in /etc/passwd: where useradd puts acc's
 * instance users. Users known only to another NSS source (LDAP...) have no name here.
 */
export async function userNamesOf(
  uids: Iterable<number>,
  file = "/etc/passwd",
): Promise<Map<number, string>> {
  const wanted = new Set(uids);
  const names = new Map<number, string>();
  if (wanted.size === 0) return names;
  const all = await passwdNames(file);
  for (const uid of wanted) {
    const name = all.get(uid);
    if (name !== undefined) names.set(uid, name);
  }
  return names;
}

/**
 * The file's names by uid, parsed again only when the file changed (its inode, size or mtime:
 * useradd and userdel replace it). A start checks who listens on the instance's port: with
 * 10,000 instances' users, a parse per start costs ~10 ms.
 */
const passwdCache = new Map<string, { stamp: string; names: Map<number, string> }>();

async function passwdNames(file: string): Promise<Map<number, string>> {
  let info;
  try {
    info = await stat(file, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw error;
  }
  const stamp = `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  const cached = passwdCache.get(file);
  if (cached?.stamp === stamp) return cached.names;
  const names = parsePasswd(await readFile(file, "utf8"));
  passwdCache.set(file, { stamp, names });
  return names;
}
