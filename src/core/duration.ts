import { AccError } from "../lib/errors.js";
import { showValue } from "./validate.js";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration in milliseconds, or null for `never`. Accepts `90s`, `15m`, `1h30m`, `2d`, `500ms`, or seconds as a bare number. */
export function parseDuration(value: string, what = "duration"): number | null {
  const text = value.trim().toLowerCase();
  if (text === "never") return null;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw new AccError("ACC_INVALID", `invalid ${what} ${showValue(value)}`, {
      hint: "use a duration such as 30s, 15m, 2h or never",
    });
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] ?? "s"] ?? 1000), 0);
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return "never";
  if (ms < 1000) return `${ms}ms`;
  const units: [string, number][] = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ];
  let rest = Math.round(ms / 1000) * 1000;
  let out = "";
  for (const [unit, size] of units) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}

/** Why the monitor stops an instance: "idle for 16m12s (timeout 15m)". */
export function idleMessage(stop: { idle_ms: number; timeout_ms: number }): string {
  return `idle for ${formatDuration(stop.idle_ms)} (timeout ${formatDuration(stop.timeout_ms)})`;
}
