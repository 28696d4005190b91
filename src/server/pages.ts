import { readFile } from "node:fs/promises";
import path from "node:path";
import { renderTemplate } from "../core/template.js";

/** The pages acc itself shows an end user; a model may ship its own in pages/<kind>.html. */
export type PageKind = "waiting" | "suspended" | "failed" | "not-found" | "filtered";

/** The path the waiting page long-polls; the waker answers it itself, it never reaches the app. */
export const WAIT_PATH = "/.well-known/acc/wait";

const STYLE =
  "body{font-family:system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222;line-height:1.5}" +
  "h1{font-size:1.4rem}.dim{color:#777;font-size:.9rem}" +
  ".spin{display:inline-block;width:1em;height:1em;border:.15em solid #ccc;border-top-color:#333;border-radius:50%;animation:s 1s linear infinite;vertical-align:-.15em;margin-right:.4em}" +
  "@keyframes s{to{transform:rotate(360deg)}}";

function shell(title: string, body: string, head = ""): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${title}</title><style>${STYLE}</style>${head}</head>
<body>
${body}
</body>
</html>
`;
}

// The script long-polls WAIT_PATH: the waker holds it until the start is over, so the page
// reloads the moment the instance is ready instead of on a fixed timer.
const WAIT_SCRIPT = `<script>
(function poll(){fetch(${JSON.stringify(WAIT_PATH)},{cache:"no-store",headers:{"accept":"application/json"}})
.then(function(){location.reload();},function(){setTimeout(poll,1000);});})();
</script><noscript><meta http-equiv="refresh" content="3"></noscript>`;

export const DEFAULT_PAGES: Readonly<Record<PageKind, string>> = {
  waiting: shell(
    "Starting…",
    `<h1><span class="spin"></span>{{ name }} is starting</h1>
<p>This site was asleep and is waking up. This page reloads by itself as soon as it is ready.</p>`,
    WAIT_SCRIPT,
  ),
  suspended: shell(
    "Suspended",
    `<h1>{{ name }} is suspended</h1>
<p>This site is not available at the moment. Please contact its administrator.</p>`,
  ),
  failed: shell(
    "Not available",
    `<h1>{{ name }} could not start</h1>
<p>This site failed to start. Its administrator has been told by the logs; please try again in a few minutes.</p>
<p class="dim">{{ reason }}</p>`,
  ),
  "not-found": shell("Not found", `<h1>Not found</h1><p>No site answers at this address.</p>`),
  filtered: shell(
    "Asleep",
    `<h1>{{ name }} is asleep</h1><p>Automated clients do not wake sites. Please retry later.</p>`,
  ),
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A page for one instance: the model's own pages/<kind>.html when its code folder has one,
 * else acc's. Values are HTML-escaped; the model's template may use {{ name }} and {{ reason }}.
 */
export async function renderPage(
  kind: PageKind,
  vars: { name: string; reason?: string },
  codeDir?: string,
): Promise<string> {
  let template = DEFAULT_PAGES[kind];
  if (codeDir !== undefined) {
    try {
      template = await readFile(path.join(codeDir, "pages", `${kind}.html`), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  const escaped = { name: escapeHtml(vars.name), reason: escapeHtml(vars.reason ?? "") };
  return renderTemplate(template, escaped, `${kind} page`);
}
