import assert from "node:assert/strict";
import { test } from "node:test";
import { AccError } from "../lib/errors.js";
import { parseCommandArgs } from "./command.js";
import { COMMANDS, findCommand, unknownCommand } from "./commands.js";
import { didYouMean, editDistance, suggest } from "./suggest.js";

test("editDistance counts a swap of two neighbours as one edit", () => {
  assert.equal(editDistance("", ""), 0);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("abc", ""), 3);
  assert.equal(editDistance("create", "create"), 0);
  assert.equal(editDistance("creat", "create"), 1);
  assert.equal(editDistance("nmae", "name"), 1);
  assert.equal(editDistance("strat", "start"), 1);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("ca", "abc"), 3); // OSA: no substring is edited twice
});

test("suggest: the closest known words, else those the word begins", () => {
  const commands = COMMANDS.map((c) => c.name);
  assert.deepEqual(suggest("creat", commands), ["create"]);
  assert.deepEqual(suggest("CREAT", commands), ["create"]);
  assert.deepEqual(suggest("strat", commands), ["start"]);
  assert.deepEqual(suggest("shwo", commands), ["show"]);
  assert.deepEqual(suggest("destory", commands), ["destroy"]);
  assert.deepEqual(suggest("cre", commands), ["create"]);
  assert.deepEqual(suggest("sto", commands), ["stop"]);
  // Short words: one edit at most, or nothing would be too far.
  // ("ls" is one edit from "tls".)
  assert.deepEqual(suggest("zq", commands), []);
  assert.deepEqual(suggest("xyzzy", commands), []);
  assert.deepEqual(suggest("", commands), []);
});

test("didYouMean: one hint, options shown with their dashes", () => {
  assert.equal(didYouMean("creat", ["create", "list"]), "did you mean create?");
  assert.equal(didYouMean("sat", ["set", "sit", "list"]), "did you mean set or sit?");
  assert.equal(didYouMean("ab", ["abc", "abd", "abe"]), "did you mean abc, abd or abe?");
  assert.equal(didYouMean("--nmae", ["name", "host"], "--"), "did you mean --name?");
  assert.equal(didYouMean("--zzzzzz", ["name", "host"], "--"), undefined);
});

test("an unknown command is a usage error naming it, with the command meant", () => {
  const error = unknownCommand("creat");
  assert.equal(error.code, "ACC_USAGE");
  assert.equal(error.message, 'unknown command "creat"');
  assert.equal(error.hint, "did you mean create?");
  assert.equal(unknownCommand("hepl").hint, "did you mean help?");
  assert.equal(unknownCommand("nosuchcommand").hint, "acc help lists them");
  // Hidden commands are acc's plumbing: never suggested.
  for (const command of COMMANDS.filter((c) => c.hidden === true))
    assert.equal(unknownCommand(`${command.name}x`).hint?.includes(command.name), false);
});

test("a mistyped option: the usage error suggests the option meant", () => {
  const create = findCommand("create")!;
  const check = (argv: string[], message: string, hint: string): void =>
    assert.throws(
      () => parseCommandArgs(create, argv),
      (error: unknown) =>
        error instanceof AccError &&
        error.code === "ACC_USAGE" &&
        error.message === message &&
        error.hint === hint,
    );
  check(["hello", "--nmae", "x"], "acc create: Unknown option '--nmae'", "did you mean --name?");
  check(["hello", "--nmae=x"], "acc create: Unknown option '--nmae'", "did you mean --name?");
  check(["hello", "--jsno"], "acc create: Unknown option '--jsno'", "did you mean --json?");
  check(
    ["hello", "--bogus-option"],
    "acc create: Unknown option '--bogus-option'",
    "acc create --help",
  );
  check(["hello", "-q"], "acc create: Unknown option '-q'", "acc create --help");
});
