// An instance's code owns what root archives and unpacks: here it races links against backup
// and restore, plants a hard link, a FIFO and a huge sparse file, and hands acc a crafted
// backup, and checks that nothing outside the instance is written, chowned or leaked, and
// that nothing hangs.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import {
  accOk,
  archiveText,
  backupOf,
  bootHome,
  echoInstance,
  holdNodeAs,
  marker,
  nodeAs,
  requireRoot,
  runAcc,
  runProcess,
  trapFor,
} from "../harness/attacker.js";
import { makeTempDir, removeDir } from "../harness/common.js";

const skip = requireRoot();

async function sha256(file: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
}

/** Bytes of disk used by every file under a folder (blocks, so sparse files count as written). */
async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    total += (await stat(full).catch(() => ({ blocks: 0 }))).blocks * 512;
  }
  return total;
}

test(
  "security: backups and restores of what the instance owns",
  { skip, timeout: 300_000 },
  async (t) => {
    const acc = await bootHome(t, ["echo"]);

    await t.test(
      "variant: a file and a folder swapped with links in a tight loop during backup and restore",
      async (t) => {
        const { who, data } = await echoInstance(acc, "sxs");
        const clean = await backupOf(acc, "sxs");
        const trap = await trapFor(t);
        const secret = marker("SWAP");
        const canary = await trap.secret("canary", `${secret}\n`);
        const folder = await trap.folder("folder");
        await trap.secret("folder/inner", `${secret}\n`);
        await trap.seal();
        const racer = holdNodeAs(
          who,
          `const f = path.join(input.data, "sw"), d = path.join(input.data, "swd");
         process.stdout.write("racing\\n");
         // Each state holds a moment, so a backup captures one or the other whole (in a
         // tighter loop tar mostly gives up: "file changed as we read it").
         const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
         for (;;) {
           try { fs.writeFileSync(f + ".t", "plain"); fs.renameSync(f + ".t", f); } catch {}
           try { fs.rmSync(d, { recursive: true, force: true }); fs.mkdirSync(d); fs.writeFileSync(d + "/in", "x"); } catch {}
           pause(2);
           try { fs.symlinkSync(input.canary, f + ".l"); fs.renameSync(f + ".l", f); } catch {}
           try { fs.rmSync(d, { recursive: true, force: true }); fs.symlinkSync(input.folder, d); } catch {}
           pause(2);
         }`,
          { data, canary, folder },
        );
        t.after(() => racer.stop());
        await racer.waitOutput(/racing/);
        const problems: string[] = [];
        const ids = [clean.id];
        for (let i = 0; i < 4; i++) {
          const backup = await runAcc(acc, ["backup", "sxs", "--json"]);
          t.diagnostic(`backup ${i + 1} while racing exited ${backup.code}`);
          if (backup.code !== 0) continue;
          const { backup: dir } = JSON.parse(backup.stdout) as { backup: string };
          ids.push(path.relative(path.join(acc.home, "backups"), dir));
          if ((await archiveText(path.join(dir, "data.tar.gz"))).includes(secret))
            problems.push(`backup ${i + 1} holds the content of a root-only file`);
        }
        for (const id of ids) {
          const restore = await runAcc(acc, ["restore", "sxs", id]);
          if (restore.timedOut) problems.push(`restore of ${id} hung`);
          t.diagnostic(`restore of ${id} while racing exited ${restore.code}`);
        }
        await racer.stop();
        for (const change of await trap.changes()) problems.push(change);
        assert.deepEqual(problems, []);
      },
    );

    await t.test(
      "variant: the restore's staging folder and data/ swapped with links while restore runs",
      async (t) => {
        const { who, root } = await echoInstance(acc, "sxr");
        const backup = await backupOf(acc, "sxr");
        const trap = await trapFor(t);
        const folder = await trap.folder("folder");
        await trap.seal();
        // restore extracts into a folder of its own beside instances/ (HOME/restores/NAME, which
        // the instance may list) and renames it to data/: the racer tries to swap each for a link.
        const racer = holdNodeAs(
          who,
          `let i = 0;
         const swap = (dir, name) => {
           if (name.includes(".sx")) return;
           const full = path.join(dir, name);
           try {
             if (!fs.lstatSync(full).isDirectory()) return;
             fs.renameSync(full, full + ".sx" + i++);
             fs.symlinkSync(input.folder, full);
           } catch {}
         };
         // inotify tells at once; the poll catches what it missed.
         try { fs.watch(input.root, (event, name) => { if (name) swap(input.root, name); }); } catch {}
         const poll = () => {
           for (const dir of [input.root, input.staging]) {
             try { for (const name of fs.readdirSync(dir)) swap(dir, name); } catch {}
           }
           setImmediate(poll);
         };
         process.stdout.write("racing\\n");
         poll();`,
          { root, folder, staging: path.join(acc.home, "restores", "sxr") },
        );
        t.after(() => racer.stop());
        await racer.waitOutput(/racing/);
        const problems: string[] = [];
        for (let i = 0; i < 3; i++) {
          const restore = await runAcc(acc, ["restore", "sxr", backup.id]);
          if (restore.timedOut) problems.push(`restore ${i + 1} hung`);
          t.diagnostic(`restore ${i + 1} exited ${restore.code}: ${restore.stderr.trim()}`);
        }
        await racer.stop();
        for (const change of await trap.changes()) problems.push(change);
        assert.deepEqual(problems, []);
      },
    );

    await t.test(
      "variant: a hard link to a root-only file in data/ is refused, or never leaks",
      async (t) => {
        const { who, data } = await echoInstance(acc, "sxh");
        const trap = await trapFor(t);
        const secret = marker("HARDLINK");
        const canary = await trap.secret("canary", `${secret}\n`);
        await trap.seal();
        const linked = await nodeAs<{ ok: boolean; code?: string }>(
          who,
          `try { await fs.link(input.canary, input.link); return { ok: true }; }
         catch (e) { return { ok: false, code: e.code }; }`,
          { canary, link: path.join(data, "hl") },
        );
        t.diagnostic(`link as ${who.user}: ${linked.ok ? "made" : linked.code}`);
        if (!linked.ok) return;
        const backup = await backupOf(acc, "sxh");
        assert.ok(
          !(await archiveText(path.join(backup.dir, "data.tar.gz"))).includes(secret),
          "the backup holds the root-only file's content",
        );
        await accOk(acc, ["restore", "sxh", backup.id]);
        assert.deepEqual(await trap.changes(), []);
      },
    );

    await t.test("variant: a FIFO in data/ does not hang backup nor restore", async () => {
      const { who, data } = await echoInstance(acc, "sxf");
      const made = await runProcess("mkfifo", [path.join(data, "fifo")], { as: who });
      assert.equal(made.code, 0, made.stderr);
      const backup = await runAcc(acc, ["backup", "sxf", "--json"], { timeoutMs: 30_000 });
      assert.ok(!backup.timedOut, "acc backup hung on a FIFO");
      if (backup.code !== 0) return;
      const { backup: dir } = JSON.parse(backup.stdout) as { backup: string };
      const restore = await runAcc(
        acc,
        ["restore", "sxf", path.relative(path.join(acc.home, "backups"), dir)],
        { timeoutMs: 30_000 },
      );
      assert.ok(!restore.timedOut, "acc restore hung on a FIFO");
    });

    await t.test(
      "variant: a 100 GB sparse file in data/ is backed up quickly, without writing 100 GB",
      async (t) => {
        const { who, data } = await echoInstance(acc, "sxz");
        const huge = path.join(data, "huge");
        t.after(() => rm(huge, { force: true }));
        const made = await runProcess("truncate", ["-s", "100G", huge], { as: who });
        assert.equal(made.code, 0, made.stderr);
        const backup = await runAcc(acc, ["backup", "sxz", "--json"], { timeoutMs: 15_000 });
        const used = await diskUsage(path.join(acc.home, "backups", "sxz"));
        t.diagnostic(
          `acc backup: ${backup.timedOut ? "killed after 15 s" : `exit ${backup.code} in ${backup.ms} ms`}, ${(used / 1e6).toFixed(1)} MB written`,
        );
        assert.ok(!backup.timedOut, "acc backup did not finish within 15 s");
        assert.ok(used < 1e9, `the backup wrote ${used} bytes`);
      },
    );

    await t.test(
      "variant: a crafted backup (data/evil -> outside, then data/evil/pwned) writes nothing outside",
      async (t) => {
        await echoInstance(acc, "sxk");
        const backup = await backupOf(acc, "sxk");
        const trap = await trapFor(t);
        const outside = await trap.folder("outside");
        const absent = trap.fresh("absent");
        await trap.seal();
        const stage = await makeTempDir("acc-sx-stage-");
        t.after(() => removeDir(stage));
        const first = path.join(stage, "1");
        const second = path.join(stage, "2");
        await mkdir(first);
        await mkdir(path.join(second, "data/evil"), { recursive: true });
        await mkdir(path.join(second, "data/gone"), { recursive: true });
        const archive = path.join(backup.dir, "data.tar.gz");
        let run = await runProcess("tar", ["--extract", "--gzip", "--file", archive, "-C", first]);
        assert.equal(run.code, 0, run.stderr);
        await symlink(outside, path.join(first, "data/evil"));
        await symlink(absent, path.join(first, "data/gone"));
        await writeFile(path.join(second, "data/evil/pwned"), "pwned\n");
        await writeFile(path.join(second, "data/gone/pwned"), "pwned\n");
        run = await runProcess("tar", [
          "--create",
          "--gzip",
          "--file",
          archive,
          "-C",
          first,
          "data",
          "-C",
          second,
          "data/evil/pwned",
          "data/gone/pwned",
        ]);
        assert.equal(run.code, 0, run.stderr);
        const manifestFile = path.join(backup.dir, "manifest.json");
        const manifest = JSON.parse(await readFile(manifestFile, "utf8")) as {
          files: Record<string, { bytes: number; sha256: string }>;
        };
        manifest.files["data.tar.gz"] = {
          bytes: (await stat(archive)).size,
          sha256: await sha256(archive),
        };
        await writeFile(manifestFile, JSON.stringify(manifest, null, 2));
        const restore = await runAcc(acc, ["restore", "sxk", backup.id]);
        t.diagnostic(`acc restore exited ${restore.code}: ${restore.stderr.trim()}`);
        assert.deepEqual(await trap.changes(), []);
      },
    );
  },
);
