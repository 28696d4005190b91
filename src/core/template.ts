import { AccError } from "../lib/errors.js";
import type { ModelManifest } from "./model.js";

// Written by hand rather than with mustache: mustache renders an unknown name as empty text and
// HTML-escapes values. In a config file the first hides a typo until the app misbehaves, and
// the second corrupts any value holding '&', '<' or a quote.
const PLACEHOLDER_RE = /\{\{([^{}\n]*)\}\}/g;

export interface Placeholder {
  /** What is between the braces, trimmed: `name`, `params.admin_email`. */
  name: string;
  line: number;
}

/** Every `{{ ... }}` in a text, with its line. */
export function findPlaceholders(text: string): Placeholder[] {
  const out: Placeholder[] = [];
  for (const match of text.matchAll(PLACEHOLDER_RE)) {
    out.push({ name: (match[1] ?? "").trim(), line: lineAt(text, match.index) });
  }
  return out;
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

/** The names a template or an [env] value of this model may use. */
export function templateVariables(manifest: Pick<ModelManifest, "params" | "database">): string[] {
  const names = ["name", "port", "url", "host", "data_dir", "config_dir"];
  if (manifest.database === "postgres") names.push("database_url");
  for (const param of Object.keys(manifest.params)) names.push(`params.${param}`);
  return names;
}

/**
 * Replaces each `{{ name }}` by its value, in one pass: a value that holds `{{ x }}` is
 * written as is, never rendered again. Values are not escaped (config formats differ); they
 * are safe to write because parameters hold no control characters.
 */
export function renderTemplate(
  text: string,
  vars: Readonly<Record<string, string>>,
  source: string,
): string {
  return text.replace(PLACEHOLDER_RE, (_match, inner: string, offset: number) => {
    const name = inner.trim();
    const value = Object.hasOwn(vars, name) ? vars[name] : undefined;
    if (value === undefined) {
      // A one-line text (an [env] value) has no line worth naming.
      const where = text.includes("\n") ? `${source}:${lineAt(text, offset)}` : source;
      const shown = name.length > 60 ? `${name.slice(0, 60)}…` : name;
      throw new AccError("ACC_MODEL", `${where}: unknown placeholder {{ ${shown} }}`, {
        hint: `known: ${Object.keys(vars).join(", ")}`,
      });
    }
    return value;
  });
}
