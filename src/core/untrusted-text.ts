/**
 * Text an instance wrote (its log, its command line) made safe to show on a terminal: control
 * characters, escape sequences and the bidirectional overrides that reorder what a reader sees
 * are written out as \xNN or \uNNNN, so nothing the app printed can drive the reader's terminal.
 * Newlines and tabs are kept when `keepLines` is set (a log), escaped otherwise (one line).
 */
export function escapeUntrusted(text: string, options: { keepLines?: boolean } = {}): string {
  return text.replace(/[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, (c) => {
    if (options.keepLines === true && (c === "\n" || c === "\t")) return c;
    switch (c) {
      case "\n":
        return "\\n";
      case "\t":
        return "\\t";
      case "\r":
        return "\\r";
      default: {
        const code = c.codePointAt(0) ?? 0;
        return code <= 0xff
          ? `\\x${code.toString(16).padStart(2, "0")}`
          : `\\u${code.toString(16).padStart(4, "0")}`;
      }
    }
  });
}
