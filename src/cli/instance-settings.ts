import { formatDuration, parseDuration } from "../core/duration.js";
import { formatLimit, LIMIT_KEYS, parseLimit, type LimitKey } from "../core/limits.js";
import { showValue, validateInstanceName } from "../core/validate.js";
import { AccError } from "../lib/errors.js";
import {
  effectiveIdleTimeout,
  effectiveLimitsOf,
  setIdleTimeout,
  setLimits,
} from "../services/instance-settings.js";
import { getInstance, resumeInstance, suspendInstance } from "../services/instances.js";
import { positional, type Command } from "./command.js";
import { instanceJson } from "./instance-view.js";
import { lifecycleCommand } from "./lifecycle.js";

/** What `acc set` may change, each with how to read its value. */
const SETTINGS = ["idle-timeout", ...LIMIT_KEYS] as const;
type SettingKey = (typeof SETTINGS)[number];

/** A parsed `idle-timeout=` value: ms, null for never, undefined to inherit again. */
export type IdleTimeoutSetting = number | null | undefined;

export interface Settings {
  idleTimeout?: { value: IdleTimeoutSetting };
  /** Limits to change: a value, null for none, undefined to inherit again. */
  limits?: Partial<Record<LimitKey, number | null | undefined>>;
}

export function parseIdleTimeoutSetting(text: string): IdleTimeoutSetting {
  const value = text.trim().toLowerCase();
  if (value === "default") return undefined;
  const ms = parseDuration(value, "idle-timeout");
  if (ms === 0) {
    throw new AccError("ACC_INVALID", `invalid idle-timeout ${showValue(text)}`, {
      hint: "use a duration above zero such as 30s, 15m or 2h, or never, or default",
    });
  }
  return ms;
}

/** Parses KEY=VALUE arguments; everything is checked before anything is changed. */
export function parseSettings(pairs: readonly string[]): Settings {
  const settings: Settings = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      throw new AccError("ACC_USAGE", `acc set: expected KEY=VALUE, got ${showValue(pair)}`, {
        hint: `known keys: ${SETTINGS.join(", ")}`,
      });
    }
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!(SETTINGS as readonly string[]).includes(key)) {
      throw new AccError("ACC_INVALID", `unknown setting ${showValue(key)}`, {
        hint: `known keys: ${SETTINGS.join(", ")}`,
      });
    }
    switch (key as SettingKey) {
      case "idle-timeout":
        settings.idleTimeout = { value: parseIdleTimeoutSetting(value) };
        break;
      default: {
        const limit = key as LimitKey;
        settings.limits ??= {};
        settings.limits[limit] =
          value.trim().toLowerCase() === "default"
            ? undefined
            : (parseLimit(limit, value, "acc set") ?? null);
      }
    }
  }
  return settings;
}

export const setCommand: Command = {
  name: "set",
  summary:
    "Change an instance's settings: idle-timeout, and its limits memory, cpu and pids (applied at once to a running instance).",
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
  async run(args, cli) {
    const name = validateInstanceName(positional(args, 0));
    const settings = parseSettings(args.positionals.slice(1));
    const ctx = await cli.open();
    let instance = await getInstance(ctx, name);
    const lines: string[] = [];
    if (settings.idleTimeout) {
      instance = await setIdleTimeout(ctx, name, settings.idleTimeout.value);
      const effective = formatDuration(await effectiveIdleTimeout(ctx, instance));
      lines.push(
        settings.idleTimeout.value === undefined
          ? `${name}: idle-timeout=default (${effective})`
          : `${name}: idle-timeout=${effective}`,
      );
    }
    if (settings.limits) {
      instance = await setLimits(ctx, name, settings.limits);
      const limits = await effectiveLimitsOf(ctx, instance);
      for (const key of Object.keys(settings.limits) as LimitKey[]) {
        lines.push(`${name}: ${key}=${formatLimit(key, limits[key])}`);
      }
    }
    return { data: instanceJson(ctx, instance), text: lines.join("\n") };
  },
};

export const suspendCommand = lifecycleCommand(
  "suspend",
  "Stop an instance and keep it down: requests get a 503 page and do not wake it, until acc resume.",
  "is suspended",
  (ctx, name) => suspendInstance(ctx, name),
  (name) => `${name} is suspended: requests get a 503 page until acc resume ${name}`,
);

export const resumeCommand = lifecycleCommand(
  "resume",
  "Lift a suspension: the instance is stopped again and its next request starts it.",
  "is resumed",
  (ctx, name) => resumeInstance(ctx, name),
  (name) => `${name} is resumed: its next request starts it (or acc start ${name})`,
);
