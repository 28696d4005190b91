// The completion scripts in the real shells, against a home with an instance in its store.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { openSqliteStore } from "../src/store/open.js";
import { ACC_BIN, createAccHome, type AccHome } from "./harness/acc.js";
import { makeTempDir, removeDir, requireBinary } from "./harness/common.js";

const INSTANCE = "adcomp1";

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: 60_000, encoding: "utf8" }, (error, stdout, stderr) => {
      resolve({
        code: error ? (typeof error.code === "number" ? error.code : 1) : 0,
        stdout,
        stderr,
      });
    });
  });
}

/** A home with one instance row (no user, no files: the completion reads only names). */
async function homeWithInstance(): Promise<AccHome> {
  // No database: the managed Postgres cluster is never made.
  const acc = await createAccHome({
    env: { ACC_POSTGRES: "external", ACC_POSTGRES_ADMIN_URL: "postgres://nobody@127.0.0.1:1/x" },
  });
  const store = openSqliteStore(path.join(acc.home, "state.db"));
  try {
    await store.insertInstance(
      {
        name: INSTANCE,
        model: "hello",
        modelVersion: "1",
        modelHash: "0",
        hosts: [`${INSTANCE}.localhost`],
        params: {},
        idleTimeout: undefined,
        portRange: {
          min: Number(acc.env.ACC_INSTANCE_PORT_MIN),
          max: Number(acc.env.ACC_INSTANCE_PORT_MAX),
        },
      },
      new Date().toISOString(),
    );
  } finally {
    await store.close();
  }
  return acc;
}

/** A folder with an `acc` on PATH that runs this build, as the scripts call it by name. */
async function accOnPath(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await makeTempDir("acc-bin-");
  t.after(() => removeDir(dir));
  await writeFile(
    path.join(dir, "acc"),
    `#!/bin/sh\nexec "${process.execPath}" "${ACC_BIN}" "$@"\n`,
    { mode: 0o755 },
  );
  return dir;
}

test("acc __complete lists names, and nothing (exit 0) for a home it cannot read", async (t) => {
  const acc = await homeWithInstance();
  t.after(() => acc.cleanup());
  assert.deepEqual(await acc.run(["__complete", "instances"]), {
    code: 0,
    stdout: `${INSTANCE}\n`,
    stderr: "",
  });
  const models = await acc.run(["__complete", "models"]);
  assert.equal(models.code, 0);
  assert.ok(models.stdout.split("\n").includes("hello"), models.stdout);
  for (const home of ["/nonexistent/acc-home", path.join(acc.home, "instances")]) {
    assert.deepEqual(await acc.run(["--home", home, "__complete", "instances"]), {
      code: 0,
      stdout: "",
      stderr: "",
    });
  }
  const bad = await acc.run(["__complete", "secrets"]);
  assert.equal(bad.code, 2);
  // Hidden: neither in help nor suggested.
  assert.doesNotMatch(await acc.ok(["help"]), /__complete/);
});

test("bash: commands, options, and instance and model names from the home", async (t) => {
  const acc = await homeWithInstance();
  t.after(() => acc.cleanup());
  const bin = await accOnPath(t);
  const script = await acc.ok(["completion", "bash"]);
  const scriptFile = path.join(bin, "acc.bash");
  await writeFile(scriptFile, script);
  const env = { ...acc.env, PATH: `${bin}:${process.env.PATH ?? ""}` };
  /** COMPREPLY after completing the last word of `line` (a list of words). */
  const complete = async (words: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<string[]> => {
    const result = await run(
      "bash",
      [
        "-c",
        'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _acc; printf "%s\\n" "${COMPREPLY[@]}"',
        "bash",
        scriptFile,
        ...words,
      ],
      { ...env, ...extraEnv },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    return result.stdout.split("\n").filter(Boolean);
  };
  assert.deepEqual(await complete(["acc", "cre"]), ["create"]);
  assert.deepEqual(await complete(["acc", "st"]), ["status", "start", "stop"]);
  assert.deepEqual(await complete(["acc", "start", ""]), [INSTANCE]);
  assert.deepEqual(await complete(["acc", "logs", "-f", "ad"]), [INSTANCE]);
  assert.deepEqual(await complete(["acc", "start", INSTANCE, ""]), []);
  assert.deepEqual(await complete(["acc", "create", "--name", ""]), []);
  assert.ok((await complete(["acc", "create", "--name", "x", ""])).includes("hello"));
  assert.deepEqual(await complete(["acc", "create", "--na"]), ["--name"]);
  assert.deepEqual(await complete(["acc", "destroy", "--"]).then((o) => o.sort()), [
    "--help",
    "--json",
    "--no-backup",
    "--yes",
  ]);
  assert.deepEqual(await complete(["acc", "models", ""]), ["prune"]);
  assert.deepEqual(await complete(["acc", "completion", "z"]), ["zsh"]);
  assert.deepEqual(await complete(["acc", "help", "rest"]), ["restart", "restore"]);
  assert.deepEqual(await complete(["acc", "--ho"]), ["--home"]);
  // --home on the line names the home the names come from.
  const elsewhere = { ACC_HOME: "/nonexistent/acc-home" };
  assert.deepEqual(await complete(["acc", "start", ""], elsewhere), []);
  assert.deepEqual(await complete(["acc", "--home", acc.home, "start", ""], elsewhere), [INSTANCE]);
});

const zshSkip = requireBinary(existsSync("/usr/bin/zsh"), "zsh");
const fishSkip = requireBinary(existsSync("/usr/bin/fish"), "fish");

/** Types `line` and a tab into an interactive zsh (in a pty), and returns what the screen shows. */
const ZPTY_DRIVER = `
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1='> '; autoload -U compinit; compinit -u -D; source \${(q)1}; print READY"
local all="" out
while [[ $all != *$'\\nREADY'* ]]; do zpty -r z out; all+=$out; done
zpty -n -w z "$2"$'\\t'
sleep 2
all=""
while zpty -r -t z out; do all+=$out; done
print -r -- "$all"
zpty -d z
`;

test("zsh: commands, options and instance names", { skip: zshSkip }, async (t) => {
  const acc = await homeWithInstance();
  t.after(() => acc.cleanup());
  const bin = await accOnPath(t);
  const scriptFile = path.join(bin, "acc.zsh");
  await writeFile(scriptFile, await acc.ok(["completion", "zsh"]));
  await writeFile(path.join(bin, "driver.zsh"), ZPTY_DRIVER);
  const env = { ...acc.env, PATH: `${bin}:${process.env.PATH ?? ""}`, HOME: bin };
  const screen = async (line: string): Promise<string> => {
    const result = await run("zsh", ["-f", path.join(bin, "driver.zsh"), scriptFile, line], env);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /_acc|_arguments|_description|not an identifier/);
    return result.stdout;
  };
  // The screen holds terminal escapes (zsh shows the added space in bold): match up to it.
  assert.match(await screen("acc cre"), /acc create\b/);
  assert.match(await screen("acc start "), new RegExp(`acc start ${INSTANCE}\\b`));
  assert.match(await screen("acc create --na"), /acc create --name\b/);
  assert.match(await screen("acc destroy --"), /--no-backup +-- skip the final backup/);
  assert.match(await screen(`acc --home ${acc.home} stop `), new RegExp(`stop ${INSTANCE}\\b`));
});

test("fish: commands, options and instance names", { skip: fishSkip }, async (t) => {
  const acc = await homeWithInstance();
  t.after(() => acc.cleanup());
  const bin = await accOnPath(t);
  const scriptFile = path.join(bin, "acc.fish");
  await writeFile(scriptFile, await acc.ok(["completion", "fish"]));
  const env = { ...acc.env, PATH: `${bin}:${process.env.PATH ?? ""}`, HOME: bin };
  const complete = async (line: string): Promise<string[]> => {
    const result = await run(
      "fish",
      ["--no-config", "-c", "source $argv[1]; complete -C $argv[2]", scriptFile, line],
      env,
    );
    assert.equal(result.code, 0, result.stderr);
    // Each line: the completion, then a tab and its description.
    return result.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("\t")[0]!);
  };
  assert.deepEqual(await complete("acc cre"), ["create"]);
  assert.deepEqual(await complete("acc start "), [INSTANCE]);
  assert.deepEqual(await complete("acc start adcomp1 "), []);
  assert.ok((await complete("acc create --name x ")).includes("hello"));
  assert.deepEqual(await complete("acc create --na"), ["--name"]);
  assert.deepEqual(await complete("acc models "), ["prune"]);
  assert.deepEqual(await complete(`acc --home ${acc.home} stop `), [INSTANCE]);
});
