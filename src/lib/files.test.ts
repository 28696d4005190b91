import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { chownTreeNoFollow } from "./files.js";

const isRoot = process.getuid?.() === 0;

test(
  "chownTreeNoFollow re-owns links themselves and never what they point at",
  { skip: isRoot ? false : "needs root to give files away" },
  async (t) => {
    const top = await mkdtemp(path.join(os.tmpdir(), "acc-chown-"));
    t.after(() => rm(top, { recursive: true, force: true }));
    const tree = path.join(top, "tree");
    const outside = path.join(top, "outside");
    await mkdir(path.join(tree, "sub"), { recursive: true });
    await mkdir(outside);
    await writeFile(path.join(tree, "a"), "a");
    await writeFile(path.join(tree, "sub", "b"), "b");
    await writeFile(path.join(outside, "secret"), "s");
    await symlink(outside, path.join(tree, "to-dir"));
    await symlink(path.join(outside, "secret"), path.join(tree, "sub", "to-file"));

    const nobody = { uid: 65534, gid: 65534 };
    await chownTreeNoFollow(tree, nobody);

    for (const rel of ["", "a", "sub", "sub/b", "to-dir", "sub/to-file"]) {
      const info = await lstat(path.join(tree, rel));
      assert.deepEqual([info.uid, info.gid], [nobody.uid, nobody.gid], rel || "tree");
    }
    for (const file of [outside, path.join(outside, "secret")]) {
      assert.equal((await lstat(file)).uid, 0, `${file} was reached through a link`);
    }
  },
);
