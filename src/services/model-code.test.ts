import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Exec } from "../lib/exec.js";
import type { AccContext } from "./context.js";
import { ensureSharedCode } from "./model-code.js";
import { createModelRegistry } from "./models.js";

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
    ctx = {
      paths: { code: path.join(tmp, "home", "code") },
      exec,
      progress: { step: () => undefined },
      models: createModelRegistry({
        bundledDir: path.join(tmp, "bundled"),
        userDir: path.join(tmp, "home", "models"),
      }),
    } as unknown as AccContext;
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
