import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCommandArgs } from "../cli/command.js";
import { AccError } from "../lib/errors.js";
import { commandFromOperation } from "./cli.js";
import { listOperation } from "./instance-read.js";

const command = commandFromOperation(listOperation);
const input = (...argv: string[]): unknown =>
  listOperation.cli?.input(parseCommandArgs(command, argv));

function refused(argv: string[], message: RegExp): void {
  assert.throws(
    () => input(...argv),
    (error: unknown) =>
      error instanceof AccError &&
      (error.code === "ACC_USAGE" || error.code === "ACC_INVALID") &&
      message.test(error.message) &&
      !error.message.includes("\n"),
    argv.join(" "),
  );
}

test("acc list options become the operation's input", () => {
  assert.deepEqual(input(), {});
  assert.deepEqual(
    input(
      ...["--search", "Shop", "--state", "running", "--model", "hello"],
      ...["--sort", "memory", "--limit", "50", "--offset", "100"],
    ),
    { q: "Shop", state: "running", model: "hello", sort: "memory", limit: 50, offset: 100 },
  );
});

test("acc list: a bad value is one line naming it", () => {
  refused(["--state", "asleep"], /invalid state "asleep"/);
  refused(["--sort", "size"], /invalid sort key "size"/);
  refused(["--model", "../etc"], /invalid model name "\.\.\/etc"/);
  refused(["--model", "Hello"], /invalid model name "Hello"/);
  refused(["--limit", "0"], /invalid limit "0"/);
  refused(["--limit", "1e3"], /invalid --limit "1e3"/);
  refused(["--limit", "-5"], /--limit/);
  refused(["--offset", "x"], /invalid --offset "x"/);
  refused(["--limit", "100001"], /invalid limit "100001"/);
  refused(["--search", "a".repeat(254)], /search text too long: "a+…" \(254 characters\)/);
  refused(["--search", "a", "--sort"], /--sort/);
});

test("the API's schema holds the same bounds as the command line", () => {
  const props = listOperation.input.properties as Record<string, Record<string, unknown>>;
  assert.deepEqual(props.sort?.enum, ["name", "activity", "memory"]);
  assert.equal(props.q?.maxLength, 253);
  const model = new RegExp(String(props.model?.pattern));
  assert.ok(model.test("hello") && !model.test("Hello") && !model.test("a/b"));
  assert.ok((props.state?.enum as string[]).includes("running"));
});
