// Backups and restores of an instance whose data/ is full of traps: links to files it must not
// reach, a FIFO, a socket, a 100 GB sparse file, a hard link, a name with a newline. Root must
// archive, restore and remove it without following anything, hanging or filling the disk.
import assert from "node:assert/strict";
import { execFileSync, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { createAccHome, type AccHome, type RunResult } from "./harness/acc.js";
import { makeTempDir, removeDir } from "./harness/common.js";

interface Ids {
  uid: number;
  gid: number;
}

const SPARSE_BYTES = 100 * 1024 ** 3;
/** Larger than this, a backup or a restored file did not keep the sparse file sparse. */
const SMALL = 1024 * 1024;

function idsOf(user: string): Ids {
  const fields = execFileSync("getent", ["passwd", user], { encoding: "utf8" }).trim().split(":");
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

/** Runs a program as an instance's user, as its app could. */
function asUser(ids: Ids, file: string, args: string[], cwd = "/"): SpawnSyncReturns<string> {
  return spawnSync(file, args, {
    uid: ids.uid,
    gid: ids.gid,
    cwd,
    encoding: "utf8",
    timeout: 30_000,
    env: { PATH: "/usr/bin:/bin" },
  });
}

function mustAsUser(ids: Ids, file: string, args: string[], cwd = "/"): void {
  const result = asUser(ids, file, args, cwd);
  assert.equal(result.status, 0, `${file} ${args.join(" ")}: ${result.stderr}`);
}

/** Owner, mode and content hash: what must not change when root works near a link to it. */
async function fingerprint(file: string): Promise<string> {
  const info = await lstat(file);
  const hash = createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
  return `${info.uid}:${info.gid} ${(info.mode & 0o7777).toString(8)} ${hash}`;
}

/**
 * Kills what a timed-out command left running on this home (a root tar still reading a sparse
 * file, say): only tar processes that name this home, started by this test.
 */
function killLeftoverTars(home: string): number[] {
  const killed: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    } catch {
      continue; // gone meanwhile
    }
    if (path.basename(argv[0] ?? "") === "tar" && argv.some((a) => a.includes(home))) {
      try {
        process.kill(Number(entry), "SIGKILL");
        killed.push(Number(entry));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
    }
  }
  return killed;
}

/** Runs acc, and fails when it takes longer than `limitMs` (then kills what it left). */
async function runWithin(acc: AccHome, args: string[], limitMs: number): Promise<RunResult> {
  const started = Date.now();
  const result = await acc.run(args, { timeoutMs: limitMs });
  const elapsed = Date.now() - started;
  if (elapsed >= limitMs - 100) {
    const killed = killLeftoverTars(acc.home);
    assert.fail(
      `acc ${args.join(" ")} did not finish within ${limitMs} ms` +
        (killed.length > 0 ? ` (killed the tar it left running: ${killed.join(", ")})` : ""),
    );
  }
  return result;
}

interface BackupView {
  files: string[];
  bytes: number;
  /** `tar -tv` of every archive in it. */
  listing: string;
  /** Every file of the backup, archives decompressed: nothing of a link's target may be in it. */
  content: Buffer;
}

async function inspectBackup(acc: AccHome, dir: string): Promise<BackupView> {
  for (const folder of [path.join(acc.home, "backups"), path.dirname(dir), dir]) {
    const info = await lstat(folder);
    assert.ok(info.isDirectory() && info.uid === 0, `${folder} is root's folder`);
    assert.equal(info.mode & 0o777, 0o700, `${folder} is 0700`);
  }
  const files = (await readdir(dir)).sort();
  let bytes = 0;
  let listing = "";
  const content: Buffer[] = [];
  for (const file of files) {
    const full = path.join(dir, file);
    const info = await lstat(full);
    assert.ok(info.isFile() && info.uid === 0, `${file} is a file of root's`);
    assert.equal(info.mode & 0o777, 0o600, `${file} is 0600`);
    bytes += info.size;
    const raw = await readFile(full);
    content.push(raw);
    if (file.endsWith(".tar.gz")) {
      assert.ok(info.size < SMALL, `${file} is small: ${info.size} bytes`);
      listing += execFileSync("tar", ["--list", "--verbose", "--gzip", "--file", full], {
        encoding: "utf8",
        timeout: 30_000,
      });
      content.push(gunzipSync(raw, { maxOutputLength: 64 * 1024 * 1024 }));
    }
  }
  return { files, bytes, listing, content: Buffer.concat(content) };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The newest backup of an instance, as `acc backups` lists it. */
async function newestBackup(acc: AccHome, name: string): Promise<string> {
  const list = JSON.parse(await acc.ok(["backups", name, "--json"])) as { path: string }[];
  assert.ok(list[0], `${name} has a backup`);
  return list[0].path;
}

async function visits(acc: AccHome, name: string): Promise<number> {
  const page = await acc.request(`${name}.localhost`, { timeoutMs: 30_000 });
  assert.equal(page.status, 200, page.body);
  const count = /visit(?:s|or)?\D*(\d+)\b/i.exec(page.body)?.[1];
  assert.ok(count !== undefined, page.body);
  return Number(count);
}

test(
  "backups and restores never follow, hang on or fill the disk with what data/ holds",
  {
    timeout: 600_000,
    skip: process.getuid?.() !== 0 ? "instances run as their own users: needs root" : false,
  },
  async (t) => {
    // No database in this test: the managed Postgres cluster is never made nor started.
    const acc = await createAccHome({
      env: {
        ACC_POSTGRES: "external",
        ACC_POSTGRES_ADMIN_URL: "postgres://nobody@127.0.0.1:1/none",
      },
    });
    t.after(() => acc.cleanup());
    const outside = await makeTempDir("bk-outside-");
    t.after(() => removeDir(outside));
    await acc.ok(["boot"]);

    const attacker = `bka${process.pid}`;
    const other = `bkb${process.pid}`;
    const copy = `bkn${process.pid}`;
    await acc.ok(["create", "hello", "--name", attacker]);
    await acc.ok(["create", "hello", "--name", other]);
    const ids = idsOf(`acc-${attacker}`);
    const root = path.join(acc.home, "instances", attacker);
    const data = path.join(root, "data");

    // What the links point to: root's files an instance must never get root to read or touch.
    const marker = `marker-${randomBytes(12).toString("hex")}`;
    const secret = path.join(outside, "secret");
    await writeFile(secret, `${marker}\n`, { mode: 0o600 });
    const program = path.join(acc.home, "supervisor", "programs", `${attacker}.conf`);
    const otherEnv = path.join(acc.home, "instances", other, "env");
    const links: Record<string, string> = {
      "program-link": program,
      "other-env": otherEnv,
      "secret-link": secret,
    };
    const targets = [program, otherEnv, secret];
    const before = new Map<string, string>();
    for (const target of targets) before.set(target, await fingerprint(target));
    const unchanged = async (which = targets): Promise<void> => {
      for (const target of which)
        assert.equal(await fingerprint(target), before.get(target), `${target} is unchanged`);
    };
    const cannotReadOtherEnv = (): void => {
      const read = asUser(ids, "cat", [otherEnv]);
      assert.notEqual(read.status, 0, "the attacker cannot read the other instance's env");
      assert.match(read.stderr, /Permission denied/);
    };

    assert.equal(await visits(acc, attacker), 1);
    const newline = "new\nline";
    const hardlinksProtected =
      (await readFile("/proc/sys/fs/protected_hardlinks", "utf8")).trim() === "1";

    await t.test("as its user, the instance plants traps in data/", async () => {
      for (const [name, target] of Object.entries(links))
        mustAsUser(ids, "ln", ["-s", "--", target, name], data);
      mustAsUser(ids, "mkfifo", ["fifo"], data);
      mustAsUser(
        ids,
        process.execPath,
        ["-e", "require('net').createServer().listen('sock', () => process.exit(0))"],
        data,
      );
      mustAsUser(ids, "truncate", ["-s", String(SPARSE_BYTES), "sparse"], data);
      mustAsUser(ids, process.execPath, [
        "-e",
        "require('fs').writeFileSync(process.argv[1], 'on two lines')",
        path.join(data, newline),
      ]);
      // Its own files made hard for their owner: unreadable, and a folder it cannot write.
      mustAsUser(ids, "touch", ["unreadable"], data);
      mustAsUser(ids, "chmod", ["000", "unreadable"], data);
      mustAsUser(ids, "mkdir", ["locked"], data);
      mustAsUser(ids, "touch", ["locked/inside"], data);
      mustAsUser(ids, "chmod", ["500", "locked"], data);
      const hard = asUser(ids, "ln", ["--", secret, "hard"], data);
      if (hardlinksProtected) {
        assert.notEqual(hard.status, 0, "fs.protected_hardlinks refuses a link to root's file");
        assert.match(hard.stderr, /Operation not permitted/);
      } else {
        assert.equal(hard.status, 0, "without fs.protected_hardlinks the link is made");
      }
      assert.ok((await lstat(path.join(data, "sock"))).isSocket());
      assert.ok((await lstat(path.join(data, "fifo"))).isFIFO());
    });

    let backup: string | undefined;
    await t.test("acc backup: quick, small, links archived as links, no target in it", async () => {
      const result = await runWithin(acc, ["backup", attacker, "--json"], 30_000);
      assert.equal(result.code, 0, result.stderr);
      const made = JSON.parse(result.stdout) as { backup: string; warnings?: string[] };
      backup = made.backup;
      assert.match(
        (made.warnings ?? []).join("\n"),
        /data\/sock: socket ignored/,
        "tar's warning about the socket it skipped is shown",
      );
      assert.match(
        (made.warnings ?? []).join("\n"),
        /data\/unreadable: Warning: Cannot open: Permission denied/,
        "a file its own user cannot read is named, not archived",
      );
      const view = await inspectBackup(acc, backup);
      assert.ok(view.bytes < SMALL, `the backup is small: ${view.bytes} bytes`);
      for (const [name, target] of Object.entries(links)) {
        assert.match(
          view.listing,
          new RegExp(`^l\\S* .* data/${name} -> ${escapeRegExp(target)}$`, "m"),
          `${name} is archived as a link`,
        );
      }
      assert.match(view.listing, /^p\S* .* data\/fifo$/m, "the FIFO is archived as a FIFO");
      assert.doesNotMatch(view.listing, /data\/sock$/m, "the socket is left out");
      assert.match(view.listing, new RegExp(`^-\\S* \\S+ +${SPARSE_BYTES} .* data/sparse$`, "m"));
      assert.match(view.listing, /^-\S* .* data\/new\\nline$/m);
      assert.doesNotMatch(view.listing, /data\/hard$/m, "no hard link to root's file");
      assert.ok(!view.content.includes(marker), "the root-only marker is not in the backup");
      assert.ok(
        !view.content.includes(await readFile(otherEnv)),
        "the other instance's env is not in the backup",
      );
      assert.ok(!view.content.includes(await readFile(program)), "its program file is not in it");
      await unchanged();
    });

    const checkData = async (dir: string, owner: Ids): Promise<void> => {
      const info = await lstat(dir);
      assert.ok(info.isDirectory());
      assert.equal(info.uid, owner.uid, "data/ is the instance user's");
      assert.equal(info.mode & 0o777, 0o700);
      for (const [name, target] of Object.entries(links)) {
        assert.ok((await lstat(path.join(dir, name))).isSymbolicLink(), `${name} is a link`);
        assert.equal(await readlink(path.join(dir, name)), target);
      }
      assert.ok((await lstat(path.join(dir, "fifo"))).isFIFO());
      const sparse = await lstat(path.join(dir, "sparse"));
      assert.equal(sparse.size, SPARSE_BYTES);
      assert.ok(sparse.blocks * 512 < SMALL, `the sparse file stays sparse: ${sparse.blocks}`);
      assert.equal(await readFile(path.join(dir, newline), "utf8"), "on two lines");
      await assert.rejects(lstat(path.join(dir, "sock")), { code: "ENOENT" });
      await assert.rejects(lstat(path.join(dir, "hard")), { code: "ENOENT" });
      await assert.rejects(lstat(path.join(dir, "unreadable")), { code: "ENOENT" });
      assert.equal((await lstat(path.join(dir, "locked"))).mode & 0o777, 0o500);
      assert.ok((await lstat(path.join(dir, "locked", "inside"))).isFile());
      for (const entry of await readdir(dir)) {
        assert.equal((await lstat(path.join(dir, entry))).uid, owner.uid, `${entry} is its own`);
      }
    };

    /** The instance folder keeps its layout: root's, only data/ the instance's, no leftover. */
    const checkLayout = async (name: string, owner: Ids): Promise<void> => {
      const folder = path.join(acc.home, "instances", name);
      assert.deepEqual((await readdir(folder)).sort(), ["config", "data", "env", "launch"]);
      for (const [entry, mode] of [
        ["", 0o750],
        ["config", 0o750],
        ["env", 0o640],
      ] as const) {
        const info = await lstat(path.join(folder, entry));
        assert.deepEqual(
          [info.uid, info.gid, info.mode & 0o777],
          [0, owner.gid, mode],
          `${name}/${entry} is root's`,
        );
      }
    };

    const requireSmallBackup = async (): Promise<string> => {
      // Never restore an archive that did not keep the sparse file sparse: 100 GB of zeros.
      assert.ok(backup !== undefined, "acc backup made a backup");
      assert.ok((await inspectBackup(acc, backup)).bytes < SMALL, "the backup is small");
      return backup;
    };

    await t.test("acc restore: quick, links restored as links, nothing followed", async () => {
      const dir = await requireSmallBackup();
      assert.equal(await visits(acc, attacker), 2);
      const result = await runWithin(acc, ["restore", attacker, path.basename(dir)], 60_000);
      assert.equal(result.code, 0, result.stderr);
      await checkData(data, ids);
      await checkLayout(attacker, ids);
      assert.equal(await visits(acc, attacker), 2, "the counter of the backup is back");
      await unchanged();
      cannotReadOtherEnv();
    });

    await t.test("acc restore --as-new: the copy's data is its own, links stay links", async () => {
      const dir = await requireSmallBackup();
      const id = path.relative(path.join(acc.home, "backups"), dir);
      const result = await runWithin(acc, ["restore", copy, id, "--as-new"], 90_000);
      assert.equal(result.code, 0, result.stderr);
      const copyIds = idsOf(`acc-${copy}`);
      await checkData(path.join(acc.home, "instances", copy, "data"), copyIds);
      await checkLayout(copy, copyIds);
      assert.equal(await visits(acc, copy), 2);
      await unchanged();
    });

    await t.test(
      "a crafted archive (a link, then a file through it) writes nothing outside",
      async () => {
        assert.equal(await visits(acc, other), 1);
        const before = await newestBackupOf(acc, other);
        const target = await makeTempDir("bk-target-");
        t.after(() => removeDir(target));
        const work = await makeTempDir("bk-craft-");
        t.after(() => removeDir(work));
        const manifestFile = path.join(before, "manifest.json");
        const manifest = JSON.parse(await readFile(manifestFile, "utf8")) as {
          files: Record<string, { bytes: number; sha256: string }>;
        };
        // The archive that holds data/: files.tar.gz (with config/ and env) or data.tar.gz.
        const archive = Object.keys(manifest.files).find((f) => f.endsWith(".tar.gz"));
        assert.ok(archive !== undefined);
        await mkdir(path.join(work, "one", "data"), { recursive: true });
        await symlink(target, path.join(work, "one", "data", "evil"));
        await mkdir(path.join(work, "two", "data", "evil"), { recursive: true });
        await writeFile(path.join(work, "two", "data", "evil", "pwned"), "pwned\n");
        const tarFile = path.join(work, "crafted.tar");
        execFileSync("tar", ["-C", path.join(work, "one"), "-cf", tarFile, "data"]);
        execFileSync("tar", ["-C", path.join(work, "two"), "-rf", tarFile, "data/evil/pwned"]);
        if (archive === "files.tar.gz") {
          // The old format also held config/ and env: keep them, so only data/ is crafted.
          execFileSync("tar", [
            "-C",
            path.join(acc.home, "instances", other),
            "-rf",
            tarFile,
            "config",
            "env",
          ]);
        }
        execFileSync("gzip", ["-n", tarFile]);
        const crafted = await readFile(`${tarFile}.gz`);
        await writeFile(path.join(before, archive), crafted, { mode: 0o600 });
        manifest.files[archive] = {
          bytes: crafted.length,
          sha256: createHash("sha256").update(crafted).digest("hex"),
        };
        await writeFile(manifestFile, JSON.stringify(manifest, null, 2), { mode: 0o600 });

        const otherIds = idsOf(`acc-${other}`);
        const result = await runWithin(acc, ["restore", other, path.basename(before)], 60_000);
        t.diagnostic(`restore of the crafted backup: exit ${result.code}: ${result.stderr.trim()}`);
        assert.deepEqual(await readdir(target), [], "nothing was written through the link");
        const otherData = path.join(acc.home, "instances", other, "data");
        if (result.code === 0) {
          assert.ok((await lstat(path.join(otherData, "evil"))).isSymbolicLink());
        } else {
          assert.doesNotMatch(result.stderr, /this is a bug/);
          assert.match(result.stderr, /evil\/pwned/, "tar's refusal is named");
          assert.ok((await lstat(path.join(otherData, "counter.json"))).isFile(), "data/ is kept");
        }
        await checkLayout(other, otherIds);
        await unchanged();
      },
    );

    await t.test(
      "a backup of the older format (files.tar.gz, made by root) is restored as new",
      async () => {
        const source = path.join(acc.home, "backups", `bkl${process.pid}`);
        const dir = path.join(source, "20200101T000000000Z");
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const work = await makeTempDir("bk-legacy-");
        t.after(() => removeDir(work));
        await mkdir(path.join(work, "data"));
        await mkdir(path.join(work, "config"));
        await writeFile(path.join(work, "data", "counter.json"), '{"visits":41}\n');
        await symlink("/etc/shadow", path.join(work, "data", "link"));
        await writeFile(path.join(work, "env"), "PARAM_GREETING='Bonjour'\n");
        const archive = path.join(dir, "files.tar.gz");
        execFileSync("tar", ["-C", work, "-czf", archive, "data", "config", "env"]);
        const bytes = await readFile(archive);
        const current = JSON.parse(
          await readFile(path.join(await newestBackupOf(acc, other), "manifest.json"), "utf8"),
        ) as { model_version: string; model_hash: string };
        const manifest = {
          format: 1,
          instance: `bkl${process.pid}`,
          model: "hello",
          model_version: current.model_version,
          model_hash: current.model_hash,
          hosts: [],
          params: {},
          database: null,
          reason: "acc backup",
          created_at: "2020-01-01T00:00:00.000Z",
          files: {
            "files.tar.gz": {
              bytes: bytes.length,
              sha256: createHash("sha256").update(bytes).digest("hex"),
            },
          },
        };
        await writeFile(path.join(dir, "manifest.json"), JSON.stringify(manifest), { mode: 0o600 });
        const name = `bko${process.pid}`;
        const id = path.relative(path.join(acc.home, "backups"), dir);
        const result = await runWithin(acc, ["restore", name, id, "--as-new"], 90_000);
        assert.equal(result.code, 0, result.stderr);
        const page = await acc.request(`${name}.localhost`);
        assert.match(page.body, /Bonjour from/, "the greeting came from the old backup's env");
        assert.match(page.body, /visit(s|or)?\D*42\b/i);
        const restored = path.join(acc.home, "instances", name, "data", "link");
        assert.equal(await readlink(restored), "/etc/shadow");
        await checkLayout(name, idsOf(`acc-${name}`));
      },
    );

    await t.test("acc destroy: the final backup is quick and small, links are links", async () => {
      const result = await runWithin(acc, ["destroy", attacker, "--yes", "--json"], 60_000);
      assert.equal(result.code, 0, result.stderr);
      const final = (JSON.parse(result.stdout) as { backup: string }).backup;
      const view = await inspectBackup(acc, final);
      assert.ok(view.bytes < SMALL, `the final backup is small: ${view.bytes} bytes`);
      for (const [name, target] of Object.entries(links)) {
        assert.match(
          view.listing,
          new RegExp(`^l\\S* .* data/${name} -> ${escapeRegExp(target)}$`, "m"),
        );
      }
      assert.ok(!view.content.includes(marker), "the root-only marker is not in the backup");
      await unchanged([otherEnv, secret]);
      await assert.rejects(lstat(program), { code: "ENOENT" }, "its program file went with it");
      await assert.rejects(lstat(root), { code: "ENOENT" });
    });
  },
);

async function newestBackupOf(acc: AccHome, name: string): Promise<string> {
  await acc.ok(["backup", name]);
  return newestBackup(acc, name);
}
