import { parseDuration } from "./duration.js";
import { LIMIT_KEYS, parseLimit, type LimitKey } from "./limits.js";
import { showValue } from "./validate.js";
import { AccError } from "../lib/errors.js";

/** What `acc set` may change, each with how to read its value. */
export const SETTINGS = ["idle-timeout", ...LIMIT_KEYS] as const;
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
