import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile, chmod } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { AccError } from "../lib/errors.js";
import { createModelRegistry, hashModelFolder } from "./models.js";

const BUNDLED = fileURLToPath(new URL("../../../models", import.meta.url));

function manifest(name: string, extra = ""): string {
  return `name = "${name}"\nversion = "1.0.0"\ncommand = "node server.js"\n${extra}\n[health]\npath = "/healthz"\n`;
}

async function writeModel(
  root: string,
  folder: string,
  files: Record<string, string>,
): Promise<string> {
  const dir = path.join(root, folder);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), content);
  }
  return dir;
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  message: RegExp,
): Promise<AccError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof AccError, `expected an AccError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.match(caught.message, message);
  return caught;
}

describe("model registry", () => {
  let tmp: string;
  let bundledDir: string;
  let userDir: string;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "acc-models-"));
    bundledDir = path.join(tmp, "bundled");
    userDir = path.join(tmp, "home", "models");
    await writeModel(bundledDir, "alpha", {
      "model.toml": manifest("alpha", 'description = "bundled alpha"'),
    });
    await writeModel(bundledDir, "beta", { "model.toml": manifest("beta") });
    await writeModel(userDir, "alpha", {
      "model.toml": manifest("alpha", 'description = "my alpha"'),
    });
    await writeModel(userDir, "gamma", { "model.toml": manifest("gamma") });
    await writeModel(userDir, "broken", { "model.toml": manifest("broken", 'comand = "x"') });
    await writeModel(userDir, "mismatch", { "model.toml": manifest("other") });
    await writeModel(userDir, "empty", { README: "not a model yet" });
    await writeModel(userDir, "Bad_Name", { "model.toml": manifest("bad") });
    await writeModel(userDir, "notemplate", {
      "model.toml": manifest(
        "notemplate",
        '[[templates]]\nsource = "templates/missing.ini"\ntarget = "app.ini"\n',
      ),
    });
    await writeModel(userDir, "withtemplate", {
      "model.toml": manifest(
        "withtemplate",
        '[[templates]]\nsource = "templates/app.ini"\ntarget = "app.ini"\n',
      ),
      "templates/app.ini": "name={{ name }}\n",
    });
    await writeModel(userDir, "escape", {
      "model.toml": manifest(
        "escape",
        '[[templates]]\nsource = "templates/link"\ntarget = "app.ini"\n',
      ),
    });
    await writeFile(path.join(tmp, "outside.ini"), "secret\n");
    await mkdir(path.join(userDir, "escape", "templates"));
    await symlink(path.join(tmp, "outside.ini"), path.join(userDir, "escape", "templates", "link"));
    await writeFile(path.join(userDir, ".hidden"), "");
    await writeFile(path.join(userDir, "notes.txt"), "");
  });

  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("lists bundled and user models, a user model overriding a bundled one", async () => {
    const models = await createModelRegistry({ bundledDir, userDir }).list();
    const summary = models.map((m) => [m.name, m.source, m.overrides, m.error === undefined]);
    assert.deepEqual(summary, [
      ["Bad_Name", "user", false, false],
      ["alpha", "user", true, true],
      ["beta", "bundled", false, true],
      ["broken", "user", false, false],
      ["empty", "user", false, false],
      ["escape", "user", false, false],
      ["gamma", "user", false, true],
      ["mismatch", "user", false, false],
      ["notemplate", "user", false, false],
      ["withtemplate", "user", false, true],
    ]);
    const alpha = models.find((m) => m.name === "alpha");
    assert.equal(alpha?.description, "my alpha");
    assert.equal(alpha?.version, "1.0.0");
    assert.equal(alpha?.dir, path.join(userDir, "alpha"));
  });

  it("lists a broken model with its error instead of failing", async () => {
    const models = await createModelRegistry({ bundledDir, userDir }).list();
    const error = (name: string): string | undefined => models.find((m) => m.name === name)?.error;
    assert.equal(
      error("broken"),
      `${path.join(userDir, "broken", "model.toml")}:4: unknown key "comand"`,
    );
    assert.match(
      error("mismatch") ?? "",
      /model\.toml:1: name "other" does not match the folder name "mismatch"$/,
    );
    assert.match(error("empty") ?? "", /empty: no model\.toml in the model folder$/);
    assert.match(error("Bad_Name") ?? "", /folder name "Bad_Name" is not a valid model name$/);
    assert.match(
      error("notemplate") ?? "",
      /model\.toml:5: template "templates\/missing\.ini" does not exist$/,
    );
    assert.match(
      error("escape") ?? "",
      /model\.toml:5: template "templates\/link" leads outside the model folder$/,
    );
    assert.equal(models.find((m) => m.name === "broken")?.version, undefined);
  });

  it("lists nothing when the folders do not exist", async () => {
    const registry = createModelRegistry({
      bundledDir: path.join(tmp, "none"),
      userDir: path.join(tmp, "none2"),
    });
    assert.deepEqual(await registry.list(), []);
  });

  it("gets a model, the user's first", async () => {
    const registry = createModelRegistry({ bundledDir, userDir });
    const alpha = await registry.get("alpha");
    assert.equal(alpha.source, "user");
    assert.equal(alpha.dir, path.join(userDir, "alpha"));
    assert.equal(alpha.manifest.description, "my alpha");
    assert.match(alpha.hash, /^[0-9a-f]{64}$/);
    const beta = await registry.get("beta");
    assert.equal(beta.source, "bundled");
    assert.equal(
      (await registry.get("withtemplate")).manifest.templates[0]?.source,
      "templates/app.ini",
    );
  });

  it("fails with ACC_NOT_FOUND, ACC_MODEL or ACC_INVALID", async () => {
    const registry = createModelRegistry({ bundledDir, userDir });
    const missing = await rejectsWith(
      registry.get("nope"),
      "ACC_NOT_FOUND",
      /^no model named "nope"$/,
    );
    assert.equal(missing.hint, "acc models lists them");
    await rejectsWith(registry.get("broken"), "ACC_MODEL", /model\.toml:4: unknown key "comand"$/);
    await rejectsWith(registry.get("empty"), "ACC_MODEL", /no model\.toml/);
    await rejectsWith(
      registry.get("../bundled/alpha"),
      "ACC_INVALID",
      /^invalid model name "\.\.\/bundled\/alpha"$/,
    );
    await rejectsWith(registry.get("Bad_Name"), "ACC_INVALID", /^invalid model name/);
  });

  it("loads the bundled hello model", async () => {
    const registry = createModelRegistry({ bundledDir: BUNDLED, userDir: path.join(tmp, "none") });
    const hello = await registry.get("hello");
    assert.equal(hello.manifest.name, "hello");
    assert.equal(hello.manifest.command, "node server.js");
    assert.equal(hello.manifest.health.path, "/healthz");
    assert.deepEqual(hello.manifest.env, { GREETING: "{{ params.greeting }}" });
    assert.deepEqual(hello.manifest.params.greeting, {
      type: "string",
      required: false,
      default: "Hello",
      secret: false,
      description: "The word the page greets with",
    });
    const listed = await registry.list();
    assert.ok(
      listed.every((m) => m.error === undefined),
      JSON.stringify(listed.map((m) => m.error)),
    );
  });
});

describe("hashModelFolder", () => {
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "acc-hash-"));
  });

  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("depends on paths and contents only, not on order or skipped folders", async () => {
    const a = await writeModel(tmp, "a", { "model.toml": "x", "src/b.js": "b", "src/a.js": "a" });
    const b = await writeModel(tmp, "b", { "src/a.js": "a", "src/b.js": "b", "model.toml": "x" });
    const hash = await hashModelFolder(a);
    assert.equal(await hashModelFolder(a), hash, "stable");
    assert.equal(await hashModelFolder(b), hash, "same content, other creation order");

    await writeModel(tmp, "b", {
      "node_modules/dep/index.js": "dep",
      ".git/HEAD": "ref",
      "sub/node_modules/x": "y",
    });
    assert.equal(await hashModelFolder(b), hash, "node_modules and .git are skipped");

    await writeModel(tmp, "b", { "src/a.js": "A" });
    assert.notEqual(await hashModelFolder(b), hash, "content changed");
  });

  it("tells a moved file and a changed executable bit from the original", async () => {
    const a = await writeModel(tmp, "c", { "ab/c": "1" });
    const b = await writeModel(tmp, "d", { "a/bc": "1" });
    assert.notEqual(await hashModelFolder(a), await hashModelFolder(b));
    const before = await hashModelFolder(a);
    await chmod(path.join(a, "ab/c"), 0o755);
    assert.notEqual(await hashModelFolder(a), before);
  });

  it("hashes a symlink by its target without following it", async () => {
    const dir = await writeModel(tmp, "e", { "model.toml": "x" });
    await symlink("/etc/hostname", path.join(dir, "link"));
    const first = await hashModelFolder(dir);
    await rm(path.join(dir, "link"));
    await symlink("/etc/hosts", path.join(dir, "link"));
    assert.notEqual(await hashModelFolder(dir), first);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  server.close();
  await once(server, "close");
  return port;
}

async function fetchText(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, text: await response.text() };
}

async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetchText(url)).status === 200) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the hello model's server", () => {
  it("serves its page and health check, counts visits on disk, and exits 0 on SIGTERM", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "acc-hello-"));
    const port = await freePort();
    const child = spawn(process.execPath, ["server.js"], {
      cwd: path.join(BUNDLED, "hello"),
      env: {
        PATH: process.env.PATH ?? "",
        PORT: String(port),
        HOST: "127.0.0.1",
        ACC_INSTANCE: "demo<1>",
        DATA_DIR: dataDir,
        GREETING: "Bonjour",
        HELLO_BOOT_DELAY_MS: "100",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, "exit");
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitHealthy(`${base}/healthz`, 10_000);
      assert.deepEqual(await fetchText(`${base}/healthz`), { status: 200, text: "ok" });

      const first = await fetchText(`${base}/`);
      assert.equal(first.status, 200);
      assert.match(first.text, /Bonjour from demo&#60;1&#62;/);
      assert.match(first.text, /visited 1 time\./);
      assert.match((await fetchText(`${base}/`)).text, /visited 2 times\./);
      assert.equal((await fetchText(`${base}/other`)).status, 404);
      assert.deepEqual(JSON.parse(await readFile(path.join(dataDir, "counter.json"), "utf8")), {
        visits: 2,
      });

      child.kill("SIGTERM");
      const [code, signal] = (await exited) as [number | null, string | null];
      assert.equal(signal, null, output);
      assert.equal(code, 0, output);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("keeps the count across restarts", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "acc-hello-"));
    await writeFile(path.join(dataDir, "counter.json"), '{"visits":41}\n');
    const port = await freePort();
    const child = spawn(process.execPath, ["server.js"], {
      cwd: path.join(BUNDLED, "hello"),
      env: { PATH: process.env.PATH ?? "", PORT: String(port), DATA_DIR: dataDir },
      stdio: "ignore",
    });
    const exited = once(child, "exit");
    try {
      await waitHealthy(`http://127.0.0.1:${port}/healthz`, 10_000);
      assert.match((await fetchText(`http://127.0.0.1:${port}/`)).text, /visited 42 times/);
    } finally {
      child.kill("SIGTERM");
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
