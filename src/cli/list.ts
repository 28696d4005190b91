import { validateInstanceName } from "../core/validate.js";
import { describeExposed, exposedListeners } from "../services/bind-check.js";
import { restartCheck } from "../services/crashes.js";
import { effectiveLimitsOf } from "../services/instance-settings.js";
import { getInstance, lastLogLines } from "../services/instances.js";
import { instanceCgroups } from "../services/cgroups.js";
import { formatLimit, LIMIT_KEYS } from "../core/limits.js";
import { mayBeAlive } from "../core/states.js";
import { formatEndpoint } from "../services/listeners.js";
import { readEnvSecrets } from "../services/instance-secrets.js";
import { runningMemory } from "../services/memory.js";
import { flag, positional, type Command } from "./command.js";
import { instanceJson } from "./instance-view.js";
import { ago, table } from "./output.js";

export const listCommand: Command = {
  name: "list",
  summary: "List the instances: name, state, URL, last activity.",
  usage: "[--json]",
  help: [],
  options: {},
  positionals: { min: 0, max: 0, names: "" },
  json: true,
  async run(_args, cli) {
    const ctx = await cli.open();
    const memory = await runningMemory(ctx);
    const instances = (await ctx.store.listInstances()).map((i) => ({
      ...instanceJson(ctx, i),
      memory_mb: memory.has(i.name) ? Math.round(memory.get(i.name) ?? 0) : null,
    }));
    const now = ctx.now();
    const text = (): string =>
      instances.length === 0
        ? "no instances yet: acc create hello"
        : table(
            ["NAME", "MODEL", "STATE", "URL", "LAST ACTIVITY", "MEMORY"],
            instances.map((i) => [
              i.name,
              `${i.model} ${i.model_version}`,
              i.state,
              i.url,
              ago(i.last_activity_at, now),
              i.memory_mb === null ? "-" : `${i.memory_mb} MB`,
            ]),
          );
    return { data: instances, text };
  },
};

export const showCommand: Command = {
  name: "show",
  summary: "Show one instance in full.",
  usage: "NAME [--json] [--secrets]",
  help: ["--secrets           also show the generated secrets and env file values"],
  options: { secrets: { type: "boolean" } },
  positionals: { min: 1, max: 1, names: "NAME" },
  json: true,
  async run(args, cli) {
    const name = validateInstanceName(positional(args, 0));
    const ctx = await cli.open();
    const instance = await getInstance(ctx, name);
    const view = instanceJson(ctx, instance);
    const secrets = flag(args, "secrets") ? await readEnvSecrets(ctx, name) : undefined;
    // Looked at only while it runs: null when it does not.
    const exposed =
      instance.state === "running"
        ? ((await exposedListeners(ctx, [instance])).get(name) ?? [])
        : null;
    const rows: [string, string][] = [
      ["name", view.name],
      ["model", `${view.model} ${view.model_version}`],
      ["state", view.state],
      ["url", view.url],
      ["hosts", view.hosts.join(", ")],
      ["port", String(view.port)],
      ["idle timeout", view.idle_timeout ?? "(model or config default)"],
      ["created", view.created_at],
      ["state since", view.state_changed_at],
      ["last activity", view.last_activity_at ?? "-"],
    ];
    const limits = await effectiveLimitsOf(ctx, instance);
    const cgroups = await instanceCgroups(ctx);
    const memoryBytes = await cgroups?.memoryBytes(name);
    const oomKilled = cgroups ? await cgroups.oomKills(name) : 0;
    rows.push([
      "limits",
      LIMIT_KEYS.map((key) => `${key}=${formatLimit(key, limits[key])}`).join(" ") +
        (cgroups ? "" : " (not enforced: no cgroups here, see acc status)"),
    ]);
    if (memoryBytes !== undefined && mayBeAlive(instance.state))
      rows.push(["memory", `${Math.round(memoryBytes / 1024 ** 2)} MB (its cgroup)`]);
    if (oomKilled > 0) rows.push(["oom kills", `${oomKilled} (over its memory limit)`]);
    if (view.last_error) rows.push(["last error", view.last_error]);
    // Why it failed, without a trip to acc logs; and when, if ever, a request starts it again.
    const restart = await restartCheck(ctx, instance);
    const crashLoop = restart.allowed
      ? null
      : {
          failures: restart.failures,
          retry_at: restart.retryAt === null ? null : new Date(restart.retryAt).toISOString(),
        };
    if (crashLoop !== null) {
      rows.push([
        "restarts",
        crashLoop.retry_at === null
          ? `none: failed ${crashLoop.failures} times in a row (acc start ${name} tries again)`
          : `failed ${crashLoop.failures} times in a row; next automatic start from ${crashLoop.retry_at}`,
      ]);
    }
    const lastLog =
      instance.state === "failed" ? (await lastLogLines(ctx, name, 10)).trimEnd() : null;
    if (lastLog) rows.push(["last log", lastLog.split("\n").join("\n  ")]);
    if (exposed !== null && exposed.length > 0) rows.push(["warning", describeExposed(exposed)]);
    for (const [key, value] of Object.entries(view.params)) rows.push([`param ${key}`, value]);
    if (secrets)
      for (const [key, value] of Object.entries(secrets)) rows.push([`env ${key}`, value]);
    const width = Math.max(...rows.map(([key]) => key.length));
    const data = {
      ...view,
      exposed_listeners: exposed?.map(formatEndpoint) ?? null,
      crash_loop: crashLoop,
      last_log: lastLog,
      limits: { ...limits, enforced: cgroups !== undefined },
      memory_bytes: mayBeAlive(instance.state) ? (memoryBytes ?? null) : null,
      oom_kills: oomKilled,
    };
    return {
      data: secrets ? { ...data, env: secrets } : data,
      text: rows.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join("\n"),
    };
  },
};
