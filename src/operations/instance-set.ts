import { positional } from "../cli/command.js";
import { parseSettings, SETTINGS } from "../core/settings.js";
import { validateInstanceName } from "../core/validate.js";
import type { InstanceJson } from "../services/instance-view.js";
import { INSTANCE, NAME } from "./schemas.js";
import type { Operation } from "./types.js";

interface SetInput {
  name: string;
  settings: string[];
}

type SetOutput = InstanceJson & { changed: string[] };

export const setOperation: Operation<SetInput, SetOutput> = {
  id: "instance.set",
  summary:
    "Change an instance's settings: idle-timeout, and its limits memory, cpu and pids (applied at once to a running instance).",
  method: "PATCH",
  path: "/instances/{name}",
  input: {
    type: "object",
    properties: {
      name: NAME,
      settings: {
        type: "array",
        minItems: 1,
        items: { type: "string" },
        description: `KEY=VALUE pairs; keys: ${SETTINGS.join(", ")} (a value of default inherits again, none or never lifts it)`,
      },
    },
    required: ["name", "settings"],
    additionalProperties: false,
  },
  output: {
    allOf: [
      INSTANCE,
      {
        type: "object",
        properties: { changed: { type: "array", items: { type: "string" } } },
      },
    ],
  },
  errors: ["ACC_NOT_FOUND", "ACC_BUSY", "ACC_USAGE"],
  permission: "change",
  async run(call, input) {
    const { applySettings } = await import("../services/instance-settings.js");
    const { instanceJson } = await import("../services/instance-view.js");
    const name = validateInstanceName(input.name);
    const { instance, changed } = await applySettings(
      call.ctx,
      name,
      parseSettings(input.settings),
    );
    return { ...instanceJson(call.ctx, instance), changed };
  },
  cli: {
    name: "set",
    usage: "NAME KEY=VALUE...",
    help: [
      "idle-timeout=15m    stop the instance after this long without requests",
      "idle-timeout=never  never stop it for being idle",
      "idle-timeout=default  use the model's or acc.toml's idle timeout again",
      "memory=512M         its cgroup's memory limit (K, M, G); over it, the kernel kills its biggest process",
      "cpu=0.5             at most this share of one CPU (2: two CPUs)",
      "pids=200            at most this many processes and threads",
      "memory=none         no limit; memory=default: the model's or acc.toml's again (so for cpu, pids)",
    ],
    options: {},
    positionals: { min: 2, max: 1 + SETTINGS.length, names: "NAME and KEY=VALUE" },
    json: true,
    input(args) {
      const name = validateInstanceName(positional(args, 0));
      const settings = args.positionals.slice(1);
      // Checked here too: a typo is told before anything is sent.
      parseSettings(settings);
      return { name, settings };
    },
    render: (view) => ({ text: view.changed.join("\n") }),
  },
};
