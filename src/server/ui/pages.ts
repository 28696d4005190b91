import { formatLimit, LIMIT_KEYS } from "../../core/limits.js";
import { INSTANCE_STATES } from "../../core/states.js";
import type { EventJson } from "../../operations/events.js";
import { formatBytes, type ModelShown } from "../../operations/models.js";
import type { BackupInfo } from "../../services/backups.js";
import type { ListedInstance, ShownInstance } from "../../services/instance-view.js";
import type { ModelInfo } from "../../services/models.js";
import type { StatusReport } from "../../services/system.js";
import { describeInstanceVersions, type ModelListed } from "../../operations/models.js";
import { html, type SafeHtml } from "./html.js";
import { actionButton, csrfField, pageButton, type Viewer } from "./layout.js";

/** The page of an instance, its actions and its downloads: names go in a path, encoded. */
export const instanceHref = (name: string, rest = ""): string =>
  `/ui/instances/${encodeURIComponent(name)}${rest}`;

/** A backup's time stamp: the part of its id after NAME/. */
export const backupStamp = (backup: BackupInfo): string => backup.id.split("/").pop() ?? "";

export function badge(state: string): SafeHtml {
  const known = (INSTANCE_STATES as readonly string[]).includes(state) ? state : "unknown";
  return html`<span class="badge ${known}">${state}</span>`;
}

function when(iso: string | null | undefined): SafeHtml {
  if (iso === null || iso === undefined || iso === "") return html`<span class="muted">-</span>`;
  return html`<time datetime="${iso}">${iso.replace("T", " ").replace(/\.\d+Z$/, "Z")}</time>`;
}

/** A link to an instance's public URL: only http(s), never javascript: or the like. */
function urlLink(url: string): SafeHtml {
  return /^https?:\/\//i.test(url) ? html`<a href="${url}">${url}</a>` : html`${url}`;
}

function mb(bytes: number | null): string {
  return bytes === null ? "-" : `${Math.round(bytes / 1024 ** 2)} MB`;
}

export function signInPage(csrf: string): SafeHtml {
  return html`<form method="post" action="/ui/signin">
    <input type="hidden" name="_csrf" value="${csrf}" />
    <label for="token"
      >Token
      <span class="hint"
        >(acc token create makes one; it is kept in acc server's memory for this session only)</span
      ></label
    >
    <input id="token" name="token" type="password" autocomplete="off" required spellcheck="false" />
    <p><button type="submit">Sign in</button></p>
  </form>`;
}

export interface InstancesQuery {
  q: string;
  state: string;
  model: string;
  sort: "name" | "activity" | "memory";
  page: number;
}

export function instancesQueryString(query: InstancesQuery, page: number): string {
  const params = new URLSearchParams();
  if (query.q !== "") params.set("q", query.q);
  if (query.state !== "") params.set("state", query.state);
  if (query.model !== "") params.set("model", query.model);
  if (query.sort !== "name") params.set("sort", query.sort);
  if (page > 1) params.set("page", String(page));
  const text = params.toString();
  return text === "" ? "/ui/instances" : `/ui/instances?${text}`;
}

function option(value: string, label: string, selected: string): SafeHtml {
  return html`<option value="${value}" ${value === selected ? html` selected` : ""}>
    ${label}
  </option>`;
}

export function instancesPage(options: {
  rows: ListedInstance[];
  query: InstancesQuery;
  hasNext: boolean;
  models: string[];
  viewer: Viewer;
}): SafeHtml {
  const { rows, query, hasNext } = options;
  return html`<form method="get" action="/ui/instances" class="filters" role="search">
      <div>
        <label for="q">Search name or host</label
        ><input id="q" name="q" type="search" value="${query.q}" />
      </div>
      <div>
        <label for="state">State</label
        ><select id="state" name="state">
          ${option("", "any", query.state)}${INSTANCE_STATES.map((s) => option(s, s, query.state))}
        </select>
      </div>
      <div>
        <label for="model">Model</label
        ><select id="model" name="model">
          ${option("", "any", query.model)}${options.models.map((m) => option(m, m, query.model))}
        </select>
      </div>
      <div>
        <label for="sort">Sort by</label
        ><select id="sort" name="sort">
          ${option("name", "name", query.sort)}${option(
            "activity",
            "last activity (latest first)",
            query.sort,
          )}${option("memory", "memory (most first)", query.sort)}
        </select>
      </div>
      <div><button type="submit">Show</button></div>
    </form>
    ${options.viewer.scope.kind === "admin" ? html`<p><a href="/ui/create">Create an instance</a></p>` : ""}
    <div class="scroll" id="instances" data-live>
      <table class="cards">
        <caption class="muted">
          Page ${query.page}${rows.length === 0 ? ": no instance matches" : ""}
        </caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">State</th>
            <th scope="col">Model</th>
            <th scope="col">URL</th>
            <th scope="col">Last activity</th>
            <th scope="col">Memory</th>
          </tr>
        </thead>
        <tbody>
          ${rows.map(
            (i) =>
              html`<tr data-name="${i.name}">
                <td data-label="Name"><a href="${instanceHref(i.name)}">${i.name}</a></td>
                <td data-label="State">${badge(i.state)}</td>
                <td data-label="Model">${i.model} ${i.model_version}</td>
                <td data-label="URL">${urlLink(i.url)}</td>
                <td data-label="Last activity">${when(i.last_activity_at)}</td>
                <td data-label="Memory">${i.memory_mb === null ? "-" : `${i.memory_mb} MB`}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <nav class="pager" aria-label="Pages">
      ${
        query.page > 1
          ? html`<a href="${instancesQueryString(query, query.page - 1)}" rel="prev"
              >Previous page</a
            >`
          : ""
      }${hasNext ? html`<a href="${instancesQueryString(query, query.page + 1)}" rel="next">Next page</a>` : ""}
    </nav>`;
}

function facts(rows: [string, SafeHtml | string][]): SafeHtml {
  return html`<dl class="facts">
    ${rows.map(
      ([k, v]) =>
        html`<dt>${k}</dt>
          <dd>${v}</dd>`,
    )}
  </dl>`;
}

function eventsTable(events: EventJson[], withInstance: boolean): SafeHtml {
  if (events.length === 0) return html`<p class="muted">No events.</p>`;
  return html`<table class="cards">
    <thead>
      <tr>
        <th scope="col">Time</th>
        ${withInstance ? html`<th scope="col">Instance</th>` : ""}
        <th scope="col">Action</th>
        <th scope="col">Outcome</th>
        <th scope="col">Cause</th>
        <th scope="col">Message</th>
      </tr>
    </thead>
    <tbody>
      ${events.map(
        (e) =>
          html`<tr>
            <td data-label="Time">${when(e.time)}</td>
            ${
              withInstance
                ? html`<td data-label="Instance">
                    ${e.instance === null ? "-" : html`<a href="${instanceHref(e.instance)}">${e.instance}</a>`}
                  </td>`
                : ""
            }
            <td data-label="Action">${e.action}</td>
            <td data-label="Outcome">${e.outcome}</td>
            <td data-label="Cause">${e.cause ?? "-"}</td>
            <td data-label="Message">${e.message ?? ""}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** An instance's backups; download links for who may download (admin, its own token). */
function backupsTable(name: string, backups: BackupInfo[], canDownload: boolean): SafeHtml {
  if (backups.length === 0) return html`<p class="muted">No backups yet.</p>`;
  return html`<table class="cards">
    <thead>
      <tr>
        <th scope="col">Backup</th>
        <th scope="col">Created</th>
        <th scope="col">Size</th>
        <th scope="col">Reason</th>
        ${canDownload ? html`<th scope="col">Download</th>` : ""}
      </tr>
    </thead>
    <tbody>
      ${backups.map(
        (b) =>
          html`<tr>
            <td data-label="Backup">${backupStamp(b)}</td>
            <td data-label="Created">${when(b.created_at)}</td>
            <td data-label="Size">${`${Math.ceil(b.bytes / 1024)} kB`}</td>
            <td data-label="Reason">${b.reason}</td>
            ${
              canDownload
                ? html`<td data-label="Download">
                    <a
                      href="${instanceHref(
                        name,
                        `/backups/${encodeURIComponent(backupStamp(b))}/download`,
                      )}"
                      download
                      >Download ${backupStamp(b)}</a
                    >
                  </td>`
                : ""
            }
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function summaryFacts(view: ShownInstance): [string, SafeHtml | string][] {
  return [
    [
      "State",
      html`${badge(view.state)} <span class="muted">since ${when(view.state_changed_at)}</span>`,
    ],
    ["URL", urlLink(view.url)],
    ["Last activity", when(view.last_activity_at)],
  ];
}

export function instancePage(options: {
  view: ShownInstance;
  events: EventJson[];
  backups: BackupInfo[];
  log: { text: string; size: number } | undefined;
  viewer: Viewer;
  revealed: boolean;
}): SafeHtml {
  const { view, viewer } = options;
  const admin = viewer.scope.kind === "admin";
  const href = (rest: string) => instanceHref(view.name, rest);
  const limits = LIMIT_KEYS.map((key) => `${key}=${formatLimit(key, view.limits[key])}`).join(" ");
  const env = view.env;
  return html`<div id="facts" data-live>
      ${facts([
        ...summaryFacts(view),
        ["Model", `${view.model} ${view.model_version}`],
        ["Hosts", view.hosts.join(", ")],
        ["Port", String(view.port)],
        ["Idle timeout", view.idle_timeout ?? "model or config default"],
        [
          "Memory",
          `${mb(view.memory_bytes)}${view.oom_kills > 0 ? ` (${view.oom_kills} OOM kills)` : ""}`,
        ],
        ["Limits", `${limits}${view.limits.enforced ? "" : " (not enforced: no cgroups here)"}`],
        ["Created", when(view.created_at)],
        ...(view.last_error !== null
          ? ([["Last error", view.last_error]] as [string, string][])
          : []),
      ])}
    </div>
    ${
      admin
        ? html`<h2>Actions</h2>
            <div class="actions">
              ${(
                [
                  ["start", "Start"],
                  ["stop", "Stop"],
                  ["restart", "Restart"],
                  ["suspend", "Suspend"],
                  ["resume", "Resume"],
                  ["backup", "Back up now"],
                ] as const
              ).map(([action, label]) => actionButton(viewer, href(`/${action}`), label))}
            </div>
            <div class="actions">
              ${pageButton(href("/upgrade"), "Upgrade…")}${pageButton(href("/rollback"), "Roll back…")}
              <span class="hint">(each shows what it does before it does it)</span>
            </div>
            ${
              options.backups.length > 0
                ? html`<form method="post" action="${href("/restore")}" class="filters">
                    ${csrfField(viewer)}
                    <div>
                      <label for="restore-backup"
                        >Restore a backup
                        <span class="hint">(the instance is stopped meanwhile)</span></label
                      >
                      <select id="restore-backup" name="backup">
                        ${options.backups.map(
                          (b) =>
                            html`<option value="${b.id}">${backupStamp(b)} (${b.reason})</option>`,
                        )}
                      </select>
                    </div>
                    <div><button type="submit">Restore</button></div>
                  </form>`
                : ""
            }
            <form
              method="post"
              action="${href("/destroy")}"
              data-confirm="${view.name}"
              class="filters"
            >
              ${csrfField(viewer)}
              <div>
                <label for="confirm"
                  >Destroy: type the instance's name, <strong>${view.name}</strong>, to
                  confirm</label
                >
                <input
                  id="confirm"
                  name="confirm"
                  type="text"
                  autocomplete="off"
                  spellcheck="false"
                  required
                />
              </div>
              <div>
                <label for="final-backup"
                  ><input id="final-backup" name="backup" type="checkbox" value="1" checked /> keep
                  a final backup</label
                >
              </div>
              <div><button type="submit" class="danger">Destroy</button></div>
            </form>`
        : ""
    }
    <h2>Parameters</h2>
    ${
      Object.keys(view.params).length === 0
        ? html`<p class="muted">None.</p>`
        : facts(Object.entries(view.params).map(([k, v]) => [k, v]))
    }
    ${
      env !== undefined
        ? html`<h2>Environment file (with its secrets)</h2>
            ${facts(Object.entries(env).map(([k, v]) => [k, v]))}`
        : admin
          ? html`<p>
              ${actionButton(viewer, href("/reveal"), "Reveal secrets")}
              <span class="muted"
                >Generated secrets and the env file are hidden until you ask.</span
              >
            </p>`
          : ""
    }
    ${options.revealed ? html`<p class="muted">Shown for this page only; reload to hide them.</p>` : ""}
    <h2>Log</h2>
    ${
      options.log === undefined
        ? html`<p class="muted">Not readable with this token.</p>`
        : html`<pre
            id="log"
            tabindex="0"
            aria-label="Log of ${view.name}"
            data-stream="${href(`/logs/stream?from=${options.log.size}`)}"
          >
${options.log.text}</pre>`
    }
    <h2>Recent events</h2>
    <div id="events" data-live class="scroll">${eventsTable(options.events, false)}</div>
    <h2>Backups</h2>
    <div id="backups" data-live class="scroll">
      ${backupsTable(view.name, options.backups, viewer.scope.kind !== "read")}
    </div>`;
}

/** What an instance:NAME token sees: its instance alone, wake, restart, its backups. */
export function endUserPage(options: {
  view: ShownInstance;
  backups: BackupInfo[];
  viewer: Viewer;
}): SafeHtml {
  const { view, viewer } = options;
  const href = (rest: string) => instanceHref(view.name, rest);
  return html`<div id="facts" data-live>${facts(summaryFacts(view))}</div>
    <h2>Actions</h2>
    <div class="actions">
      ${actionButton(viewer, href("/start"), "Wake")}${actionButton(
        viewer,
        href("/restart"),
        "Restart",
      )}${actionButton(viewer, href("/backup"), "Back up now")}
    </div>
    <h2>Backups</h2>
    <div id="backups" data-live class="scroll">
      ${backupsTable(view.name, options.backups, viewer.scope.kind !== "read")}
    </div>`;
}

function inputFor(param: ModelShown["params"][number]): SafeHtml {
  const id = `param-${param.name}`;
  const field = `param.${param.name}`;
  const req = param.required ? html` required` : "";
  const hint = html`<span class="hint"
    >${param.type}${param.required ? ", required" : ""}${
      param.default !== undefined ? `, default ${param.default}` : ""
    }${param.secret ? ", secret: generated when left empty" : ""}${
      param.description !== undefined ? ` — ${param.description}` : ""
    }</span
  >`;
  if (param.type === "bool") {
    return html`<label for="${id}">${param.name} ${hint}</label
      ><select id="${id}" name="${field}">
        ${option("", "default", "")}${option("true", "true", "")}${option("false", "false", "")}
      </select>`;
  }
  const type =
    param.type === "int"
      ? "number"
      : param.type === "email"
        ? "email"
        : param.type === "password"
          ? "password"
          : "text";
  return html`<label for="${id}">${param.name} ${hint}</label
    ><input
      id="${id}"
      name="${field}"
      type="${type}"
      ${param.default !== undefined ? html` placeholder="${param.default}"` : ""}${req}
      autocomplete="off"
    />`;
}

export function createPage(options: {
  models: ModelInfo[];
  model: ModelShown | undefined;
  viewer: Viewer;
}): SafeHtml {
  const { model, viewer } = options;
  const usable = options.models.filter((m) => m.error === undefined);
  const choose = html`<form method="get" action="/ui/create" class="filters">
    <div>
      <label for="model">Model</label
      ><select id="model" name="model">
        ${usable.map((m) => option(m.name, `${m.name} ${m.version ?? ""}`, model?.name ?? ""))}
      </select>
    </div>
    <div><button type="submit">Choose</button></div>
  </form>`;
  if (model === undefined) return choose;
  if (model.error !== undefined)
    return html`${choose}
      <p class="flash error">This model's manifest has an error: ${model.error}</p>`;
  return html`${choose}
    <form method="post" action="/ui/create">
      ${csrfField(viewer)}
      <input type="hidden" name="model" value="${model.name}" />
      <fieldset>
        <legend>
          ${model.name}
          ${model.version ?? ""}${model.description !== undefined ? ` — ${model.description}` : ""}
        </legend>
        <label for="name"
          >Name
          <span class="hint">(a DNS label; empty: ${model.name}1, ${model.name}2…)</span></label
        >
        <input
          id="name"
          name="name"
          type="text"
          autocomplete="off"
          spellcheck="false"
          pattern="[a-z0-9]([a-z0-9-]*[a-z0-9])?"
        />
        <label for="hosts"
          >Extra host names <span class="hint">(space separated, optional)</span></label
        >
        <input id="hosts" name="hosts" type="text" autocomplete="off" spellcheck="false" />
        <label for="idle_timeout"
          >Idle timeout
          <span class="hint">(30s, 15m, 2h, never; empty: the model's or config's)</span></label
        >
        <input id="idle_timeout" name="idle_timeout" type="text" autocomplete="off" />
      </fieldset>
      ${
        model.params.length > 0
          ? html`<fieldset>
              <legend>Parameters</legend>
              ${model.params.map(inputFor)}
            </fieldset>`
          : ""
      }
      <p>
        <label for="start"
          ><input id="start" name="start" type="checkbox" value="1" checked /> start it now</label
        >
      </p>
      <p><button type="submit">Create</button></p>
    </form>`;
}

export function modelsPage(models: ModelListed[], viewer: Viewer): SafeHtml {
  const admin = viewer.scope.kind === "admin";
  return html`<div class="scroll">
    <table class="cards">
      <thead>
        <tr>
          <th scope="col">Model</th>
          <th scope="col">Version</th>
          <th scope="col">Source</th>
          <th scope="col">Instances</th>
          <th scope="col">Description or error</th>
          ${admin ? html`<th scope="col">Upgrade</th>` : ""}
        </tr>
      </thead>
      <tbody>
        ${models.map(
          (m) =>
            html`<tr>
              <td data-label="Model">
                ${
                  m.error === undefined && admin
                    ? html`<a href="/ui/create?model=${encodeURIComponent(m.name)}">${m.name}</a>`
                    : m.name
                }
              </td>
              <td data-label="Version">${m.version ?? "-"}</td>
              <td data-label="Source">
                ${m.source}${m.overrides ? " (overrides the bundled one)" : ""}
              </td>
              <td data-label="Instances">${describeInstanceVersions(m.instances, m.version)}</td>
              <td data-label="Description">
                ${
                  m.error !== undefined
                    ? html`<strong class="error">Manifest error:</strong> ${m.error}`
                    : (m.description ?? "")
                }
              </td>
              ${
                admin
                  ? html`<td data-label="Upgrade">
                      ${
                        m.error === undefined
                          ? html`<a href="/ui/models/${encodeURIComponent(m.name)}/upgrade"
                              >Upgrade all instances of ${m.name}</a
                            >`
                          : "-"
                      }
                    </td>`
                  : ""
              }
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export function backupsPage(backups: BackupInfo[], canDownload: boolean): SafeHtml {
  if (backups.length === 0) return html`<p class="muted">No backups.</p>`;
  return html`<div class="scroll">
    <table class="cards">
      <thead>
        <tr>
          <th scope="col">Instance</th>
          <th scope="col">Backup</th>
          <th scope="col">Created</th>
          <th scope="col">Size</th>
          <th scope="col">Database</th>
          <th scope="col">Reason</th>
          ${canDownload ? html`<th scope="col">Download</th>` : ""}
        </tr>
      </thead>
      <tbody>
        ${backups.map(
          (b) =>
            html`<tr>
              <td data-label="Instance">${b.instance}</td>
              <td data-label="Backup">${backupStamp(b)}</td>
              <td data-label="Created">${when(b.created_at)}</td>
              <td data-label="Size">${`${Math.ceil(b.bytes / 1024)} kB`}</td>
              <td data-label="Database">${b.database ? "yes" : "no"}</td>
              <td data-label="Reason">${b.reason}</td>
              ${
                canDownload
                  ? html`<td data-label="Download">
                      <a
                        href="${instanceHref(
                          b.id.split("/")[0] ?? "",
                          `/backups/${encodeURIComponent(backupStamp(b))}/download`,
                        )}"
                        download
                        >Download</a
                      >
                    </td>`
                  : ""
              }
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function statusValue(value: unknown): SafeHtml | string {
  if (value === null || value === undefined) return "-";
  if (typeof value === "string") return value;
  if (typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value))
    return value.length === 0 ? "none" : value.map((v) => JSON.stringify(v)).join(", ");
  return facts(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, statusValue(v)]),
  );
}

export function statusPage(report: StatusReport): SafeHtml {
  const order = [
    "supervisord",
    "nginx",
    "server",
    "postgres",
    "exits",
    "ports",
    "disk",
    "versions",
    "instances",
    "total",
  ];
  const rest = Object.keys(report).filter((k) => !order.includes(k));
  const record = report as unknown as Record<string, unknown>;
  return html`<div id="status" data-live>
    ${facts(
      [...order, ...rest]
        .filter((k) => record[k] !== undefined)
        .map((k) => {
          const value = record[k];
          if (k === "disk")
            return [
              k,
              `${formatBytes(report.disk.free_bytes)} free of ${formatBytes(report.disk.total_bytes)}`,
            ];
          return [
            k,
            typeof value === "string" && /^(running|stopped)$/.test(value)
              ? badge(value)
              : statusValue(value),
          ];
        }),
    )}
  </div>`;
}

export function eventsPage(events: EventJson[]): SafeHtml {
  return html`<div id="events" data-live class="scroll">${eventsTable(events, true)}</div>`;
}

export function messagePage(text: string, link?: { href: string; label: string }): SafeHtml {
  return html`<p>${text}</p>
    ${link !== undefined ? html`<p><a href="${link.href}">${link.label}</a></p>` : ""}`;
}
