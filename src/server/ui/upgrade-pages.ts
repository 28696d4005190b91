import { renderUpgrade } from "../../operations/upgrades.js";
import type { UpgradeItem, UpgradeReport } from "../../services/upgrades.js";
import { html, type SafeHtml } from "./html.js";
import { csrfField, type Flash, type Viewer } from "./layout.js";
import { instanceHref } from "./pages.js";

const OUTCOME_TEXT: Record<UpgradeItem["outcome"], string> = {
  upgraded: "upgraded",
  rolled_back: "rolled back",
  failed: "failed",
  skipped: "skipped",
  would_upgrade: "would upgrade",
  not_started: "not started",
};

function list(values: string[] | undefined): string {
  return values === undefined || values.length === 0 ? "-" : values.join(", ");
}

/**
 * The dry run's lines, one row per instance. The diff and the reasons come from a model's
 * templates and an instance's values: text, escaped like everything else.
 */
function resultsTable(report: UpgradeReport, openDiffs: boolean): SafeHtml {
  return html`<div class="scroll" id="upgrade-results">
    <table class="cards">
      <thead>
        <tr>
          <th scope="col">Instance</th>
          <th scope="col">Version</th>
          <th scope="col">Outcome</th>
          <th scope="col">Parameters added</th>
          <th scope="col">Parameters dropped</th>
          <th scope="col">Environment</th>
        </tr>
      </thead>
      <tbody>
        ${report.results.map(
          (item) =>
            html`<tr data-name="${item.name}">
                <td data-label="Instance"><a href="${instanceHref(item.name)}">${item.name}</a></td>
                <td data-label="Version">${item.model} ${item.from} → ${item.to}</td>
                <td data-label="Outcome">
                  <strong>${OUTCOME_TEXT[item.outcome]}</strong>${
                    item.reason !== undefined ? `: ${item.reason}` : ""
                  }
                </td>
                <td data-label="Parameters added">${list(item.params_added)}</td>
                <td data-label="Parameters dropped">${list(item.params_dropped)}</td>
                <td data-label="Environment">${list(item.env_changes)}</td>
              </tr>
              ${
                item.outcome === "would_upgrade"
                  ? html`<tr>
                      <td colspan="6">
                        ${
                          item.diff === undefined
                            ? html`<span class="muted">No change to its config templates.</span>`
                            : html`<details ${openDiffs ? html` open` : ""}>
                                <summary>The config templates' diff for ${item.name}</summary>
                                <pre class="diff">${item.diff}</pre>
                              </details>`
                        }
                      </td>
                    </tr>`
                  : ""
              }`,
        )}
      </tbody>
    </table>
  </div>`;
}

/** The version the dry run's instances would go to: the same for all (one model), if any. */
export function targetVersion(report: UpgradeReport): string | undefined {
  return report.results.find((item) => item.outcome === "would_upgrade")?.to;
}

/**
 * acc upgrade --dry-run as a page, then the form that runs it for real (none when nothing
 * would be upgraded). `batch` adds the rollout's fields (a whole model's upgrade).
 */
export function upgradePage(options: {
  report: UpgradeReport;
  viewer: Viewer;
  /** Where the confirmation is posted. */
  action: string;
  /** What is upgraded, in the button's words: "ub1", "the instances of hello". */
  what: string;
  batch: boolean;
  back: { href: string; label: string };
}): SafeHtml {
  const { report, viewer } = options;
  const to = targetVersion(report);
  const c = report.counts;
  const confirm =
    to === undefined
      ? html`<p id="nothing-to-upgrade">
          <strong
            >Nothing to
            upgrade${
              report.results.length === 0
                ? ": every instance of the model is on its current version"
                : ""
            }.</strong
          >
        </p>`
      : html`<form method="post" action="${options.action}">
          ${csrfField(viewer)}
          <input type="hidden" name="to" value="${to}" />
          <fieldset>
            <legend>Upgrade ${options.what} to ${to}</legend>
            <p class="hint">
              Each instance is stopped, backed up, moved to the new version and checked; one that
              fails is rolled back wholly (files, database, state). Its page's Roll back undoes one
              that succeeded.
            </p>
            ${
              options.batch
                ? html`<label for="batch"
                      >Batch size <span class="hint">(instances at once)</span></label
                    >
                    <input
                      id="batch"
                      name="batch"
                      type="number"
                      min="1"
                      max="64"
                      value="1"
                      required
                    />
                    <label for="max_failures"
                      >Max failures
                      <span class="hint"
                        >(the rollout stops after this many rolled back)</span
                      ></label
                    >
                    <input
                      id="max_failures"
                      name="max_failures"
                      type="number"
                      min="1"
                      value="1"
                      required
                    />`
                : ""
            }
            <label for="verify"
              ><input id="verify" name="verify" type="checkbox" value="1" checked /> verify a
              stopped instance
              <span class="hint"
                >(start and stop it on its new version; else its next wake does)</span
              ></label
            >
          </fieldset>
          <p><button type="submit">Upgrade ${options.what}</button></p>
        </form>`;
  return html`<p id="dry-run">
      Dry run, nothing changed yet: ${c.would_upgrade} would be upgraded, ${c.skipped} skipped.
    </p>
    ${resultsTable(report, !options.batch)} ${confirm}
    <p><a href="${options.back.href}">${options.back.label}</a></p>`;
}

/** The real upgrade's report as a flash: its summary line, each instance's lines below. */
export function upgradeFlash(report: UpgradeReport): Flash {
  const lines = renderUpgrade(report).split("\n");
  const summary = lines.pop() ?? "";
  const c = report.counts;
  return {
    kind: c.rolled_back + c.failed + c.not_started > 0 ? "error" : "ok",
    text: `Upgrade: ${summary}.`,
    ...(lines.length > 0 ? { detail: lines.join("\n") } : {}),
  };
}

/** The confirmation of a rollback, a POST of its own. */
export function rollbackPage(options: {
  name: string;
  model: string;
  version: string;
  viewer: Viewer;
}): SafeHtml {
  const { name } = options;
  return html`<p>
      ${name} is on ${options.model} ${options.version}. A rollback puts it back on the version
      before its last upgrade, with its files and database from the pre-upgrade backup. What it has
      now is backed up first.
    </p>
    <form method="post" action="${instanceHref(name, "/rollback")}">
      ${csrfField(options.viewer)}
      <p><button type="submit" class="danger">Roll back ${name}</button></p>
    </form>
    <p><a href="${instanceHref(name)}">Back to ${name}</a></p>`;
}
