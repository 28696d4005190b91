/**
 * HTML made by a tagged template that escapes every interpolated value: whatever an instance
 * or a user names or prints (names, hosts, params, logs, event messages) is hostile, so only a
 * fragment made by `html` itself (or `raw`, for acc's own constant markup) goes in unescaped.
 */

const SAFE = Symbol("acc.safeHtml");

/** A fragment of HTML known to be safe: made by `html` or `raw`. */
export interface SafeHtml {
  readonly [SAFE]: true;
  readonly text: string;
}

function safe(text: string): SafeHtml {
  return { [SAFE]: true, text };
}

export function isSafeHtml(value: unknown): value is SafeHtml {
  return typeof value === "object" && value !== null && (value as SafeHtml)[SAFE] === true;
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "`": "&#96;",
};

/** Text as HTML: safe between tags and inside a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c);
}

function render(value: unknown): string {
  if (value === null || value === undefined || value === false) return "";
  if (isSafeHtml(value)) return value.text;
  if (Array.isArray(value)) return value.map(render).join("");
  if (typeof value === "string") return escapeHtml(value);
  if (typeof value === "number" || typeof value === "bigint" || value === true)
    return String(value);
  // An object that is not a fragment is never markup: its text form, escaped.
  return escapeHtml(Object.prototype.toString.call(value));
}

/** `html\`<p>${name}</p>\``: values escaped, nested `html` fragments and arrays of them kept. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? "";
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? "");
  return safe(out);
}

/** acc's own constant markup (CSS, a script): never anything a user or an instance wrote. */
export function raw(text: string): SafeHtml {
  return safe(text);
}
