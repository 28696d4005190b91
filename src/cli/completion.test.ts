import assert from "node:assert/strict";
import { test } from "node:test";
import { COMMANDS } from "./commands.js";
import { completedCommands, completionScript, SHELLS } from "./completion.js";

const visible = COMMANDS.filter((command) => command.hidden !== true);

test("every command a person may type is completed, with its options and its first argument", () => {
  const completed = completedCommands();
  assert.deepEqual(
    completed.map((c) => c.name),
    [...visible.map((c) => c.name), "help"],
  );
  assert.equal(
    completed.some((c) => c.name.startsWith("__")),
    false,
  );
  const byName = new Map(completed.map((c) => [c.name, c]));
  for (const command of visible) {
    const longs = byName.get(command.name)!.options.map((o) => o.long);
    for (const option of Object.keys(command.options)) assert.ok(longs.includes(option), option);
    assert.ok(longs.includes("help"));
    assert.equal(longs.includes("json"), command.json, `${command.name} --json`);
  }
  assert.equal(byName.get("start")!.first, "instances");
  assert.equal(byName.get("set")!.first, "instances");
  assert.equal(byName.get("events")!.first, "instances");
  assert.equal(byName.get("create")!.first, "models");
  assert.deepEqual(byName.get("models")!.first, ["prune"]);
  assert.deepEqual(byName.get("completion")!.first, ["bash", "zsh", "fish"]);
  assert.equal(byName.get("help")!.first, "commands");
  assert.equal(byName.get("list")!.first, undefined);
  const lines = byName.get("logs")!.options.find((o) => o.long === "lines")!;
  assert.deepEqual(lines, {
    long: "lines",
    short: "n",
    takesValue: true,
    multiple: false,
    description: "how many lines (default 50)",
  });
  assert.equal(byName.get("create")!.options.find((o) => o.long === "host")!.multiple, true);
  // Descriptions come from acc's help text and go inside quoted words of three shells.
  for (const command of completed) {
    for (const text of [command.description, ...command.options.map((o) => o.description)])
      assert.match(text, /^[^'"`$\\[\]:]+$/, text);
  }
});

test("each shell's script names every command and option, and asks acc for names", () => {
  for (const shell of SHELLS) {
    const script = completionScript(shell);
    for (const command of completedCommands()) {
      assert.match(script, new RegExp(`\\b${command.name}\\b`), `${shell}: ${command.name}`);
      for (const option of command.options) {
        assert.ok(
          script.includes(`--${option.long}`) || script.includes(`-l ${option.long}`),
          `${shell}: ${command.name} --${option.long}`,
        );
      }
    }
    assert.match(script, /__complete/);
    assert.match(script, /instances/);
    assert.match(script, /models/);
    assert.doesNotMatch(script, /undefined/);
    assert.doesNotMatch(script, /acc's/);
  }
  assert.match(completionScript("bash"), /^complete -F _acc acc$/m);
  assert.match(completionScript("zsh"), /^#compdef acc$/m);
  assert.match(completionScript("fish"), /^complete -c acc -f$/m);
});
