import type { TokenScope } from "../../operations/types.js";
import { CSRF_FIELD } from "./csrf.js";
import { html, type SafeHtml } from "./html.js";

/** Who looks at a page: enough to draw its navigation and its forms. */
export interface Viewer {
  tokenName: string;
  scope: TokenScope;
  csrf: string;
}

/** A message shown once at the top of the next page (after an action's redirect). */
export interface Flash {
  kind: "ok" | "error";
  text: string;
  /** Shown under the message in a <pre> (generated secrets, once). */
  detail?: string;
}

/** The hidden field every form carries (checked on every POST). */
export function csrfField(viewer: Viewer): SafeHtml {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${viewer.csrf}" />`;
}

/** A one-button form: an action as a POST, never a link (links are for reading). */
export function actionButton(
  viewer: Viewer,
  action: string,
  label: string,
  options: { danger?: boolean; fields?: SafeHtml } = {},
): SafeHtml {
  return html`<form method="post" action="${action}" class="inline">
    ${csrfField(viewer)}${options.fields ?? ""}<button
      type="submit"
      ${options.danger === true ? html` class="danger"` : ""}
    >
      ${label}
    </button>
  </form>`;
}

/** A button to a page that asks before it changes anything (a GET: no CSRF token needed). */
export function pageButton(href: string, label: string): SafeHtml {
  return html`<form method="get" action="${href}" class="inline">
    <button type="submit">${label}</button>
  </form>`;
}

const ADMIN_NAV: readonly [string, string][] = [
  ["/ui/instances", "Instances"],
  ["/ui/create", "Create"],
  ["/ui/models", "Models"],
  ["/ui/backups", "Backups"],
  ["/ui/events", "Events"],
  ["/ui/status", "Status"],
];

function nav(viewer: Viewer, current: string): SafeHtml {
  const links: readonly [string, string][] =
    viewer.scope.kind === "instance"
      ? [[`/ui/instances/${encodeURIComponent(viewer.scope.name)}`, "My instance"]]
      : ADMIN_NAV.filter(([href]) => href !== "/ui/create" || viewer.scope.kind === "admin");
  return html`<nav aria-label="Main">
    <ul>
      ${links.map(
        ([href, label]) =>
          html`<li>
            <a href="${href}" ${current === href ? html` aria-current="page"` : ""}>${label}</a>
          </li>`,
      )}
    </ul>
    <form method="post" action="/ui/signout" class="signout">
      ${csrfField(viewer)}<span class="who">${viewer.tokenName}</span>
      <button type="submit">Sign out</button>
    </form>
  </nav>`;
}

export function flashBox(flash: Flash | undefined): SafeHtml {
  if (flash === undefined) return html``;
  return html`<div
    class="flash ${flash.kind}"
    role="${flash.kind === "error" ? "alert" : "status"}"
  >
    <p>${flash.text}</p>
    ${flash.detail !== undefined ? html`<pre>${flash.detail}</pre>` : ""}
  </div>`;
}

/**
 * A whole page: the skip link first (keyboard users reach the content in one Tab), the
 * navigation, then `main`. CSS and JS are acc's own files under /ui/assets: nothing from
 * outside, and the page reads the same with JavaScript off.
 */
export function layout(options: {
  title: string;
  viewer?: Viewer;
  current?: string;
  flash?: Flash;
  body: SafeHtml;
}): string {
  const { title, viewer } = options;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width,initial-scale=1" />
        <meta name="robots" content="noindex" />
        <title>${title} · acc</title>
        <link rel="stylesheet" href="/ui/assets/ui.css" />
        <script src="/ui/assets/ui.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <a class="brand" href="/ui">acc</a
          >${viewer !== undefined ? nav(viewer, options.current ?? "") : ""}
        </header>
        <main id="main" tabindex="-1">
          <h1>${title}</h1>
          ${flashBox(options.flash)} ${options.body}
        </main>
      </body>
    </html> `.text;
}
