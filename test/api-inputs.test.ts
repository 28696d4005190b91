import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import type { ApiClient } from "../src/cli/client.js";
import { parseCommandArgs, type CliEnv } from "../src/cli/command.js";
import { findCommand } from "../src/cli/commands.js";
import { hasControlCharacter } from "../src/core/model-params.js";
import { exitCodeFor, isAccError } from "../src/lib/errors.js";
import type { AccContext } from "../src/services/context.js";
import { OPERATIONS } from "../src/operations/registry.js";
import type { JsonSchema, Operation } from "../src/operations/types.js";
import { ACC_ROOT, createAccHome, stopAccServer, type AccHome } from "./harness/acc.js";
import {
  callApi,
  cliLine,
  errorOf,
  httpCallFor,
  makeToken,
  MINIMAL_INPUTS,
  missingInputs,
  NO_DATABASE,
  viaToken,
  type ApiAnswer,
  type InputNames,
} from "./harness/api.js";
import { waitFor } from "./harness/common.js";
import { HOSTILE, UNROUTABLE_HOSTS as SHARED_UNROUTABLE } from "./harness/hostile.js";

// The hosts the CLI's bad-input suite refuses for being another site's, and acc's admin host.
const UNROUTABLE_HOSTS = [...SHARED_UNROUTABLE, "acc.localhost", "Acc.Localhost"];

type Input = Record<string, unknown>;

const str = (value: unknown): string => String(value);
const list = (value: unknown): string[] => (Array.isArray(value) ? value.map(str) : []);
/** Options first, then `--` and the positionals: a value like -rf stays a value. */
const args = (command: string[], options: string[], positionals: unknown[]): string[] => [
  ...command,
  ...options,
  "--",
  ...positionals.map(str),
];
const opt = (flag: string, value: unknown): string[] =>
  value === undefined ? [] : [`--${flag}=${str(value)}`];

/**
 * The same input as the CLI's arguments, per operation id: what `acc` would send. null: the
 * operation takes no string the CLI passes on (nothing hostile to compare).
 */
const CLI_ARGS: Record<string, ((input: Input) => string[]) | null> = {
  "instance.list": null,
  "instance.show": (i) => args(["show"], [], [i.name]),
  "instance.create": (i) =>
    args(
      ["create"],
      [
        ...opt("name", i.name),
        ...list(i.hosts).flatMap((h) => opt("host", h)),
        ...list(i.params).flatMap((p) => opt("param", p)),
        ...opt("idle-timeout", i.idle_timeout),
        ...list(i.limits).flatMap((l) => opt("limit", l)),
        ...(i.start === false ? ["--no-start"] : []),
      ],
      [i.model],
    ),
  "instance.start": (i) => args(["start"], [], [i.name]),
  "instance.stop": (i) => args(["stop"], [], [i.name]),
  "instance.restart": (i) => args(["restart"], [], [i.name]),
  "instance.suspend": (i) => args(["suspend"], [], [i.name]),
  "instance.resume": (i) => args(["resume"], [], [i.name]),
  "instance.set": (i) => args(["set"], [], [i.name, ...list(i.settings)]),
  "instance.host-add": (i) => args(["host", "add"], [], [i.name, i.host]),
  "instance.host-remove": (i) => args(["host", "remove"], [], [i.name, i.host]),
  "instance.destroy": (i) => args(["destroy"], ["--yes", "--no-backup"], [i.name]),
  "instance.logs": (i) => args(["logs"], [], [i.name]),
  "instance.backup": (i) => args(["backup"], [], [i.name]),
  "backup.list": (i) => args(["backups"], [], [i.name]),
  "backup.download": null,
  "instance.restore": (i) =>
    args(["restore"], i.as_new === true ? ["--as-new"] : [], [i.name, i.backup]),
  "instance.upgrade": (i) =>
    args(
      ["upgrade"],
      [
        ...opt("model", i.model),
        ...opt("batch", i.batch),
        ...opt("max-failures", i.max_failures),
        ...(i.dry_run === true ? ["--dry-run"] : []),
        ...(i.verify === false ? ["--no-verify"] : []),
        ...list(i.params).flatMap((p) => opt("param", p)),
      ],
      list(i.names),
    ),
  "instance.rollback": (i) => args(["rollback"], [], [i.name]),
  "event.list": (i) => args(["events"], [], [i.name]),
  "model.list": null,
  "model.show": null,
  "model.prune": null,
  "system.status": null,
  "system.monitor": null,
  "system.doctor": null,
  "token.create": (i) =>
    args(
      ["token", "create"],
      [...opt("scope", i.scope), ...opt("name", i.name), ...opt("expires", i.expires)],
      [],
    ),
  "token.list": null,
  "token.revoke": (i) => args(["token", "revoke"], [], [i.token]),
  // The CLI reads files where the API takes their text: nothing to compare line by line.
  "tls.import": null,
  "tls.list": null,
  "tls.issue": (i) =>
    args(["tls", "issue"], i.skip_check === true ? ["--skip-check"] : [], [i.name]),
};

/**
 * Values a field takes as they are (not hostile there): sent, they would change the store.
 * A token's name may be `..` or `-rf` (it is only ever shown escaped); a string parameter may
 * hold ; { } $ quotes (test/inert-values.test.ts shows they reach the app as text).
 */
function takenAsIs(opId: string, field: string, value: string): boolean {
  if (opId === "token.create" && field === "name") return /^[A-Za-z0-9._:-]{1,64}$/.test(value);
  // A search is text to look for: any value up to a host name's length finds what it finds.
  if (opId === "instance.list" && field === "q") return value.length <= 253;
  return false;
}

interface Case {
  label: string;
  op: Operation;
  input: Input;
  /** The CLI's arguments for the same input; none for a field only the API has. */
  cli?: string[];
  /** Without a CLI form: the field Ajv must name. */
  field?: string;
}

function isStrings(schema: JsonSchema): boolean {
  return (
    schema.type === "string" ||
    (schema.type === "array" && (schema.items as JsonSchema | undefined)?.type === "string")
  );
}

/** Every hostile value into every field of every operation, from the minimal valid input. */
function buildCases(names: InputNames): Case[] {
  const cases: Case[] = [];
  for (const op of OPERATIONS) {
    // tls is off in this home, so tls.import refuses every input alike ("tls is off"): its
    // hostile files and PEM text are test/tls.test.ts's and src/lib/certificates.test.ts's.
    if (op.id === "tls.import") continue;
    const base = MINIMAL_INPUTS[op.id]?.(names) ?? {};
    const cli = CLI_ARGS[op.id];
    for (const [field, schema] of Object.entries(op.input.properties)) {
      const values =
        op.id === "instance.create" && field === "hosts"
          ? [...HOSTILE, ...UNROUTABLE_HOSTS]
          : op.id === "instance.create" && field === "name"
            ? [...HOSTILE, "acc", "Upper"]
            : HOSTILE;
      for (const value of values) {
        if (takenAsIs(op.id, field, value)) continue;
        if (isStrings(schema)) {
          const hostile = schema.type === "array" ? [value] : value;
          const input = { ...base, [field]: hostile };
          cases.push({
            label: `${op.id} ${field}=${JSON.stringify(value).slice(0, 40)}`,
            op,
            input,
            ...(cli ? { cli: cli(input) } : { field }),
          });
          // A string parameter: refused only for control characters and length (see above).
          if (field === "params" && (hasControlCharacter(value) || value.length > 1024)) {
            const param = { ...base, params: [`greeting=${value}`] };
            cases.push({
              label: `${op.id} params=greeting=${JSON.stringify(value).slice(0, 30)}`,
              op,
              input: param,
              ...(cli ? { cli: cli(param) } : { field }),
            });
          }
        } else {
          // Numbers and booleans: a query's text, or a JSON body's string, is refused by type.
          cases.push({
            label: `${op.id} ${field}=${JSON.stringify(value).slice(0, 40)} (not a ${String(schema.type)})`,
            op,
            input: { ...base, [field]: value },
            field,
          });
        }
      }
    }
  }
  // acc's own admin host's label, as a new name from a backup.
  const restore = OPERATIONS.find((op) => op.id === "instance.restore");
  if (restore) {
    const input = { name: "acc", backup: names.backup, as_new: true };
    cases.push({
      label: "restore --as-new acc",
      op: restore,
      input,
      cli: CLI_ARGS["instance.restore"]!(input),
    });
  }
  return cases;
}

/** Every file under home with its content hash; what the running services write is left out. */
async function snapshot(dir: string, base = dir): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const rel = path.relative(base, full);
    // Logs (nginx's access log, supervisord's), pids and sockets, the store's WAL files.
    if (/^(logs|run|waker)(\/|$)|\.log$|state\.db(-wal|-shm)?$/.test(rel)) continue;
    if (entry.isDirectory()) Object.assign(out, await snapshot(full, base), { [`${rel}/`]: "dir" });
    else if (entry.isFile())
      out[rel] = createHash("sha256")
        .update(await readFile(full))
        .digest("hex");
    else out[rel] = "other";
  }
  return out;
}

/** What the store holds, as the CLI lists it (a token's last use moves by itself). */
async function storeView(acc: AccHome): Promise<Record<string, unknown>> {
  const read = async (args: string[]): Promise<unknown> =>
    JSON.parse(await acc.ok([...args, "--json"])) as unknown;
  const tokens = (await read(["token", "list"])) as object[];
  return {
    instances: await read(["list"]),
    events: await read(["events", "-n", "100000"]),
    backups: await read(["backups"]),
    tokens: tokens.map((token) => ({ ...token, last_used_at: null })),
  };
}

interface CliAnswer {
  code: number;
  line: string;
}

/** acc server is down for the CLI run here: it does the work itself, as `acc` then does. */
const SERVER_DOWN: ApiClient = {
  target: "none",
  call: () => Promise.resolve(undefined),
  follow: () => Promise.resolve(false),
  pipe: () => Promise.resolve(false),
};

/**
 * A command line run by the CLI's own command (bin/acc.ts's steps: find the command, parse
 * its arguments, run it, print an AccError as `acc: MESSAGE (HINT)` with its exit code).
 */
async function runCliHere(acc: AccHome, ctx: AccContext, argv: string[]): Promise<CliAnswer> {
  const [name = "", ...rest] = argv;
  const command = findCommand(name);
  assert.ok(command, `no command ${name}`);
  const cli: CliEnv = {
    home: acc.home,
    env: acc.env,
    accRoot: ACC_ROOT,
    json: false,
    interactive: false,
    progress: { step: () => undefined },
    showsProgress: false,
    open: () => Promise.resolve(ctx),
    confirm: () => Promise.resolve(false),
    write: () => undefined,
    api: () => SERVER_DOWN,
    remote: false,
  };
  try {
    const result = await command.run(parseCommandArgs(command, rest), cli);
    return { code: result.exitCode ?? 0, line: "" };
  } catch (error) {
    if (!isAccError(error)) throw error;
    return {
      code: exitCodeFor(error),
      line: cliLine({
        code: error.code,
        message: error.message,
        ...(error.hint !== undefined ? { hint: error.hint } : {}),
      }),
    };
  }
}

/** Runs fn over items, `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

function checkAnswer(c: Case, answer: ApiAnswer, cli?: CliAnswer): void {
  const label = c.label;
  if (cli) {
    assert.ok(
      [2, 3].includes(cli.code),
      `${label}: the CLI exits ${cli.code}: ${cli.line.slice(0, 300)}`,
    );
    assert.equal(
      answer.status,
      cli.code === 2 ? 400 : 404,
      `${label}: ${answer.body.slice(0, 300)}`,
    );
    const error = errorOf(answer);
    assert.equal(cliLine(error), cli.line, label);
  } else {
    assert.equal(answer.status, 400, `${label}: ${answer.body.slice(0, 300)}`);
    const error = errorOf(answer);
    assert.equal(error.code, "ACC_INVALID", label);
    assert.match(
      error.message,
      // The field named: by Ajv ("invalid querystring state ...") or by acc's own check of it
      // ("invalid instance name ...") where the operation has no command line to compare with.
      new RegExp(String.raw`^invalid (\w+ )*${c.field ?? ""}\b`),
      label,
    );
  }
  const line = cliLine(errorOf(answer));
  assert.ok(!line.includes("\n"), `${label}: one line`);
  assert.ok(line.length < 400, `${label}: a short line (${line.length})`);
}

test(
  "bad input through the API: 400 (404) with the CLI's line for every field, nothing changes",
  { timeout: 300_000 },
  async (t) => {
    const acc = await createAccHome({ env: NO_DATABASE });
    t.after(() => acc.cleanup());
    await acc.ok(["boot"]);
    await acc.ok(["create", "hello", "--name", "ae1", "--no-start"]);
    await acc.ok(["backup", "ae1"]);
    const backup = (JSON.parse(await acc.ok(["backups", "ae1", "--json"])) as { id: string }[])[0]
      ?.id;
    assert.ok(backup);
    const admin = await makeToken(acc, "admin", { name: "ai-admin" });
    const names: InputNames = { instance: "ae1", backup, token: admin.name };

    assert.deepEqual(missingInputs(OPERATIONS), [], "add an entry to MINIMAL_INPUTS");
    assert.deepEqual(
      OPERATIONS.map((op) => op.id).filter((id) => !(id in CLI_ARGS)),
      [],
      "add an entry to CLI_ARGS (null when the CLI passes no string on)",
    );
    const cases = buildCases(names);

    const started = Date.now();
    const phase = (what: string): void => t.diagnostic(`${what}: ${Date.now() - started} ms`);
    // The CLI's lines, with acc server down: the CLI checks and runs them itself. Each command
    // in this process (the CLI's own command objects, as bin/acc.ts runs them: a few ms each),
    // and a sample of them as the real `acc` too, to show that the two say the same.
    await stopAccServer(acc);
    const lines = new Map<string, CliAnswer>();
    const commands = [...new Set(cases.flatMap((c) => (c.cli ? [JSON.stringify(c.cli)] : [])))];
    const { openContext } = await import("../src/services/open.js");
    const ctx = await openContext({ home: acc.home, env: acc.env, accRoot: ACC_ROOT });
    try {
      for (const key of commands)
        lines.set(key, await runCliHere(acc, ctx, JSON.parse(key) as string[]));
      phase(`${commands.length} CLI commands in this process`);
      const sample = commands.filter((key, i) => i % 8 === 0 || key.includes("x".repeat(100)));
      await pool(sample, 2, async (key) => {
        const result = await acc.run(JSON.parse(key) as string[]);
        assert.equal(result.stdout, "", `acc ${key.slice(0, 200)}: nothing on stdout`);
        assert.deepEqual(
          { code: result.code, line: result.stderr.trimEnd() },
          lines.get(key),
          `acc ${key.slice(0, 200)}`,
        );
      });
      phase(`${sample.length} of them as acc itself`);
      await ctx.processes.startService("acc-server");
    } finally {
      await ctx.store.close();
    }
    await waitFor(
      "acc server's API",
      () =>
        callApi(acc, "GET", "/status").then(
          (a) => (a.status === 200 ? true : undefined),
          () => undefined,
        ),
      30_000,
    );

    const filesBefore = await snapshot(acc.home);
    const storeBefore = await storeView(acc);
    for (const c of cases) {
      const request = httpCallFor(c.op, c.input);
      const body = request.body ? { body: request.body } : {};
      const local = await callApi(acc, request.method, request.path, body);
      checkAnswer(c, local, c.cli ? lines.get(JSON.stringify(c.cli)) : undefined);
      // Through nginx with a token, the same answer (a value nginx refuses itself, as a path
      // over its header buffers, is left out: it never reaches acc).
      if (request.path.length < 4000) {
        const remote = await callApi(acc, request.method, request.path, {
          ...body,
          via: viaToken(admin.token),
        });
        assert.equal(remote.status, local.status, `${c.label} through nginx: ${remote.body}`);
        assert.equal(remote.body, local.body, `${c.label} through nginx`);
      }
    }
    phase(`${cases.length} hostile inputs through the API`);
    assert.deepEqual(await snapshot(acc.home), filesBefore, "no file under home changed");
    assert.deepEqual(await storeView(acc), storeBefore, "the store did not change");
  },
);
