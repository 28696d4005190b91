// An instance's code owns files that root later opens, writes, shows and chowns. Here it
// replaces its files and folders with symbolic links, or plants links beside them, and checks
// that root never writes, chowns or shows anything outside the instance because of them.
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { type AccHome } from "../harness/acc.js";
import {
  accOk,
  backupOf,
  bootHome,
  echoInstance,
  listAs,
  marker,
  openForWriteAs,
  pathState,
  readAs,
  replaceWithLinksAs,
  requireRoot,
  runAcc,
  symlinksAs,
  trapFor,
  undoLinksAs,
  nodeAs,
  type PathState,
  type Trap,
} from "../harness/attacker.js";

const skip = requireRoot();

/**
 * Runs what root does to an instance (a wake through nginx, stop, start, logs, backup,
 * restore) and returns, for each, what changed in the trap and anything it printed that
 * holds the secret marker.
 */
async function rootOperations(
  acc: AccHome,
  name: string,
  trap: Trap,
  options: { restore: string[]; secret?: string },
): Promise<string[]> {
  const problems: string[] = [];
  const seen = new Set<string>();
  const check = async (what: string, printed = ""): Promise<void> => {
    for (const change of await trap.changes()) {
      if (!seen.has(change)) problems.push(`after ${what}: ${change}`);
      seen.add(change);
    }
    if (options.secret !== undefined && printed.includes(options.secret))
      problems.push(`${what} printed the content of a root-only file`);
  };
  const acc_ = async (args: string[]): Promise<void> => {
    const run = await runAcc(acc, args, { timeoutMs: 60_000 });
    if (run.timedOut) problems.push(`acc ${args.join(" ")} did not finish within 60 s`);
    await check(`acc ${args.join(" ")}`, run.stdout + run.stderr);
  };
  await accOk(acc, ["stop", name]);
  const woken = await acc
    .request(`${name}.localhost`, { timeoutMs: 20_000 })
    .then((a) => a.body)
    .catch((error: unknown) => String(error));
  await check("a wake through nginx", woken);
  await acc_(["stop", name]);
  await acc_(["start", name]);
  await acc_(["logs", name]);
  await acc_(["show", name, "--secrets"]);
  const backup = await runAcc(acc, ["backup", name, "--json"], { timeoutMs: 60_000 });
  await check("acc backup", backup.stdout + backup.stderr);
  const made =
    backup.code === 0
      ? [
          path.relative(
            path.join(acc.home, "backups"),
            (JSON.parse(backup.stdout) as { backup: string }).backup,
          ),
        ]
      : [];
  for (const id of [...options.restore, ...made]) await acc_(["restore", name, id]);
  await acc_(["stop", name]);
  return problems;
}

test(
  "security: links the instance plants in its own folder",
  { skip, timeout: 600_000 },
  async (t) => {
    const acc = await bootHome(t, ["echo"]);

    await t.test(
      "1. root never writes through a link the instance put in place of one of its files",
      async (t) => {
        const { who, root } = await echoInstance(acc, "sxw-files", { ranOnce: true });
        const clean = await backupOf(acc, "sxw-files");
        const trap = await trapFor(t);
        const { replaced, refused } = await replaceWithLinksAs(who, root, trap.dir, "files");
        t.diagnostic(`replaced: ${replaced.map((r) => r.rel).join(", ") || "nothing"}`);
        t.diagnostic(`refused: ${refused.join(", ") || "nothing"}`);
        await trap.seal();
        const problems = await rootOperations(acc, "sxw-files", trap, { restore: [clean.id] });
        assert.deepEqual(problems, []);
      },
    );

    await t.test(
      "1. root never writes into a folder the instance put a link in place of",
      async (t) => {
        const { who, root } = await echoInstance(acc, "sxw-dirs", { ranOnce: true });
        const clean = await backupOf(acc, "sxw-dirs");
        const trap = await trapFor(t);
        const { replaced, refused } = await replaceWithLinksAs(who, root, trap.dir, "dirs");
        for (const r of replaced) await mkdir(r.target, { mode: 0o755 });
        t.diagnostic(`replaced: ${replaced.map((r) => r.rel).join(", ") || "nothing"}`);
        t.diagnostic(`refused: ${refused.join(", ") || "nothing"}`);
        await trap.seal();
        // A folder of a loaded program that goes missing stops supervisord from reading its
        // config (see the last test): put them back before the trap goes, whatever happened.
        const problems = await rootOperations(acc, "sxw-dirs", trap, {
          restore: [clean.id],
        }).finally(() => undoLinksAs(who, root, replaced));
        assert.deepEqual(problems, []);
      },
    );

    await t.test(
      "1. acc never shows nor appends to a root-only file the instance linked its files to",
      async (t) => {
        const { who, root } = await echoInstance(acc, "sxw-read", { ranOnce: true });
        const clean = await backupOf(acc, "sxw-read");
        const trap = await trapFor(t);
        const secret = marker("SECRET");
        const secretFile = await trap.secret("secret", `SX_MARKER=${secret}\n`);
        const { replaced } = await replaceWithLinksAs(who, root, trap.dir, "files", secretFile);
        // Also where the log would go if the instance had not started yet.
        await symlinksAs(who, [{ link: path.join(root, "logs/app.log"), target: secretFile }]);
        t.diagnostic(`replaced: ${replaced.map((r) => r.rel).join(", ") || "nothing"}`);
        await trap.seal();
        const problems = await rootOperations(acc, "sxw-read", trap, {
          restore: [clean.id],
          secret,
        });
        assert.deepEqual(problems, []);
      },
    );

    await t.test(
      "2. restore never chowns what links in data/, config/ or logs/ point at",
      async (t) => {
        const { who, root } = await echoInstance(acc, "sxc", { ranOnce: true });
        await accOk(acc, ["create", "echo", "--name", "sxo", "--no-start"]);
        const other = path.join(acc.home, "instances", "sxo");
        const trap = await trapFor(t);
        const canary = await trap.secret("canary", `${marker("CANARY")}\n`);
        const program = path.join(acc.home, "supervisor/programs/sxc.conf");
        const targets = {
          "its own program file": program,
          "another instance's folder": other,
          "another instance's env": path.join(other, "env"),
          "another instance's data": path.join(other, "data"),
          "acc's store": path.join(acc.home, "state.db"),
          "a root-only file": canary,
        };
        const planted = await symlinksAs(who, [
          { link: path.join(root, "data/x"), target: program },
          { link: path.join(root, "data/y"), target: other },
          { link: path.join(root, "data/z"), target: path.join(other, "env") },
          { link: path.join(root, "data/w"), target: canary },
          { link: path.join(root, "config/x"), target: path.join(acc.home, "state.db") },
          { link: path.join(root, "config/y"), target: path.join(other, "data") },
          { link: path.join(root, "logs/x"), target: canary },
        ]);
        t.diagnostic(
          `planted: ${planted.map((p) => `${path.relative(root, p.link)} ${p.ok ? "ok" : p.code}`).join(", ")}`,
        );
        const before: Record<string, PathState> = {};
        for (const [what, file] of Object.entries(targets)) before[what] = await pathState(file);
        const backup = await runAcc(acc, ["backup", "sxc", "--json"]);
        const problems: string[] = [];
        if (backup.code === 0) {
          const { backup: dir } = JSON.parse(backup.stdout) as { backup: string };
          const restore = await runAcc(acc, [
            "restore",
            "sxc",
            path.relative(path.join(acc.home, "backups"), dir),
          ]);
          t.diagnostic(`acc restore exited ${restore.code}: ${restore.stderr.trim()}`);
        } else t.diagnostic(`acc backup exited ${backup.code}: ${backup.stderr.trim()}`);
        for (const [what, file] of Object.entries(targets)) {
          const after = await pathState(file);
          if (JSON.stringify(after) !== JSON.stringify(before[what]))
            problems.push(
              `${what} changed: ${JSON.stringify(before[what])} -> ${JSON.stringify(after)}`,
            );
        }
        const env = await readAs(who, path.join(other, "env"));
        if (env.ok) problems.push("the attacker reads another instance's env");
        const data = await listAs(who, path.join(other, "data"));
        if (data.ok) problems.push("the attacker lists another instance's data");
        const write = await openForWriteAs(who, program);
        if (write.ok) problems.push("the attacker may write its own supervisord program file");
        assert.deepEqual(problems, []);
      },
    );

    await t.test(
      "found: an instance that moves its own folders away does not keep others from starting",
      async (t) => {
        // Stopped programs stay loaded in supervisord, which rereads every loaded program's
        // config at each start: one whose log folder is gone fails the reread for everyone.
        const { who, root } = await echoInstance(acc, "sxd", { ranOnce: true });
        await accOk(acc, ["create", "echo", "--name", "sxd-other", "--no-start"]);
        const moved = await nodeAs<string[]>(
          who,
          `const moved = [];
           for (const name of await fs.readdir(input).catch(() => [])) {
             try { await fs.rename(path.join(input, name), path.join(input, name + ".gone")); moved.push(name); }
             catch {}
           }
           return moved;`,
          root,
        );
        t.diagnostic(`moved away: ${moved.join(", ") || "nothing"}`);
        try {
          const start = await runAcc(acc, ["start", "sxd-other"]);
          assert.equal(start.code, 0, start.stderr);
        } finally {
          await nodeAs(
            who,
            `for (const name of input.moved) await fs.rename(path.join(input.root, name + ".gone"), path.join(input.root, name)).catch(() => {});
             return true;`,
            { root, moved },
          );
          await runAcc(acc, ["stop", "sxd-other"]);
        }
      },
    );
  },
);
