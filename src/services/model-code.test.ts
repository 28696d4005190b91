import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Exec } from "../lib/exec.js";
import type { AccContext } from "./context.js";
import { ensureSharedCode } from "./model-code.js";
import { createModelRegistry } from "./models.js";

/** What ensureSharedCode needs of a context: a home in tmp, its models, and exec. */
function contextIn(tmp: string, exec: Exec): AccContext {
  return {
    paths: { code: path.join(tmp, "home", "code") },
    exec,
    progress: { step: () => undefined },
    models: createModelRegistry({
      bundledDir: path.join(tmp, "bundled"),
      userDir: path.join(tmp, "home", "models"),
    }),
  } as unknown as AccContext;
}

describe("shared code of a model whose folder is a link", () => {
  let tmp: string;
  let target: string;
  let ctx: AccContext;
  const installs: string[] = [];

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "acc-model-code-"));
    // The sysadmin keeps the model elsewhere and links it into HOME/models.
    target = path.join(tmp, "srv", "linked");
    await mkdir(target, { recursive: true });
    await writeFile(
      path.join(target, "model.toml"),
      'name = "linked"\nversion = "1.0.0"\ncommand = "node server.js"\n[health]\npath = "/"\n',
    );
    await writeFile(path.join(target, "server.js"), "// app\n");
    await writeFile(path.join(target, "package.json"), '{"dependencies":{"left-pad":"1"}}');
    await mkdir(path.join(tmp, "home", "models"), { recursive: true });
    await symlink(target, path.join(tmp, "home", "models", "linked"));
    // npm install as far as the code folder can tell: node_modules appears in its cwd.
    const exec: Exec = async (_file, _args, options = {}) => {
      installs.push(options.cwd ?? "");
      await mkdir(path.join(options.cwd ?? "", "node_modules", "left-pad"), { recursive: true });
      return { stdout: "", stderr: "" };
    };
    ctx = contextIn(tmp, exec);
  });

  after(() => rm(tmp, { recursive: true, force: true }));

  it("copies the link's target, writes nothing into it, and installs once", async () => {
    const first = await ctx.models.get("linked");
    const dir = await ensureSharedCode(ctx, first);
    assert.ok((await lstat(dir)).isDirectory(), "the code folder is a folder, not a link");
    assert.deepEqual((await readdir(dir)).sort(), [
      ".acc-complete",
      "model.toml",
      "node_modules",
      "package.json",
      "server.js",
    ]);
    assert.deepEqual((await readdir(target)).sort(), ["model.toml", "package.json", "server.js"]);
    // A second create finds the same hash, so the same complete folder: no second install.
    const second = await ctx.models.get("linked");
    assert.equal(second.hash, first.hash);
    assert.equal(await ensureSharedCode(ctx, second), dir);
    assert.equal(installs.length, 1);
  });
});

describe("shared code made by several operations of one process at once", () => {
  let tmp: string;
  let ctx: AccContext;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "acc-model-code-"));
    const model = path.join(tmp, "home", "models", "busy");
    await mkdir(model, { recursive: true });
    await writeFile(
      path.join(model, "model.toml"),
      'name = "busy"\nversion = "1.0.0"\ncommand = "node server.js"\n[health]\npath = "/"\n',
    );
    await writeFile(path.join(model, "server.js"), "// app\n");
    ctx = contextIn(tmp, () => Promise.reject(new Error("nothing to install")));
  });

  after(() => rm(tmp, { recursive: true, force: true }));

  // acc server creates (and upgrades) several instances at once: the first ones of a new version
  // all make its code folder in the same process, often in the same millisecond.
  it("gives each the one complete folder and leaves no temp folder", async () => {
    const model = await ctx.models.get("busy");
    const dirs = await Promise.all(Array.from({ length: 8 }, () => ensureSharedCode(ctx, model)));
    assert.equal(new Set(dirs).size, 1);
    assert.deepEqual(await readdir(path.join(tmp, "home", "code")), [path.basename(dirs[0]!)]);
    assert.deepEqual((await readdir(dirs[0]!)).sort(), [
      ".acc-complete",
      "model.toml",
      "server.js",
    ]);
  });
});
