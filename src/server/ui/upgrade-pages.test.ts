import assert from "node:assert/strict";
import { test } from "node:test";
import type { UpgradeItem, UpgradeReport } from "../../services/upgrades.js";
import type { Viewer } from "./layout.js";
import { rollbackPage, upgradeFlash, upgradePage } from "./upgrade-pages.js";

const viewer: Viewer = { tokenName: "ops", scope: { kind: "admin" }, csrf: "tok3n" };

function report(results: UpgradeItem[], dryRun = true): UpgradeReport {
  const counts = {
    upgraded: 0,
    rolled_back: 0,
    failed: 0,
    skipped: 0,
    would_upgrade: 0,
    not_started: 0,
  };
  for (const item of results) counts[item.outcome]++;
  return { dry_run: dryRun, results, counts, stopped: null, duration_ms: 12 };
}

/** A page's HTML with its whitespace runs as one space (prettier lays out the templates). */
const page = (r: UpgradeReport, batch = false) =>
  flat(
    upgradePage({
      report: r,
      viewer,
      action: "/ui/instances/ub1/upgrade",
      what: "ub1",
      batch,
      back: { href: "/ui/instances/ub1", label: "Back" },
    }).text,
  );

function flat(text: string): string {
  return text.replace(/\s+/g, " ");
}

test("the dry run page: versions, parameters, env and the diff as text, then the confirm form", () => {
  const text = page(
    report([
      {
        name: "ub1",
        model: "hello",
        from: "1.0.0",
        to: "1.1.0",
        outcome: "would_upgrade",
        params_added: ["colour"],
        params_dropped: ["<b>old</b>"],
        env_changes: ["+PARAM_COLOUR", "-PARAM_OLD"],
        diff: '+<script>alert("diff")</script>\n',
      },
    ]),
  );
  assert.ok(text.includes("hello 1.0.0 → 1.1.0"));
  assert.ok(text.includes("colour"));
  assert.ok(text.includes("+PARAM_COLOUR, -PARAM_OLD"));
  assert.ok(!text.includes("<script>") && !text.includes("<b>old"), "nothing unescaped");
  assert.ok(text.includes("+&lt;script&gt;alert(&quot;diff&quot;)&lt;/script&gt;"));
  assert.match(text, /<form method="post" action="\/ui\/instances\/ub1\/upgrade">/);
  assert.match(text, /name="_csrf" value="tok3n"/);
  assert.match(text, /name="to" value="1.1.0"/);
  assert.match(text, /name="verify" type="checkbox" value="1" checked/);
  assert.ok(!text.includes('name="batch"'), "no rollout fields for one instance");
  assert.match(text, /<details\s+open>/);
});

test("the dry run page: skipped (already on the version) offers no confirm form", () => {
  const text = page(
    report([
      {
        name: "ub1",
        model: "hello",
        from: "1.0.0",
        to: "1.0.0",
        outcome: "skipped",
        reason: "already on 1.0.0",
      },
    ]),
  );
  assert.match(text, /skipped<\/strong>: already on 1.0.0/);
  assert.match(text, /Nothing to upgrade\./);
  assert.ok(!text.includes('method="post"'), "no confirm form");
});

test("a whole model's dry run: rollout fields with defaults; none to upgrade says so", () => {
  const item: UpgradeItem = {
    name: "ub2",
    model: "hello",
    from: "1.0.0",
    to: "1.1.0",
    outcome: "would_upgrade",
  };
  const text = page(report([item]), true);
  assert.match(text, /name="batch" type="number" min="1" max="64" value="1"/);
  assert.match(text, /name="max_failures"[^>]*value="1"/);
  assert.ok(text.includes("No change to its config templates."));
  assert.ok(!/<details\s+open>/.test(text));
  const none = page(report([]), true);
  assert.match(none, /Nothing to upgrade: every instance of the model is on its current version/);
  assert.ok(!none.includes('method="post"'));
});

test("the upgrade's flash: its summary, each instance's lines (the log after a rollback)", () => {
  const flash = upgradeFlash(
    report(
      [
        {
          name: "ub1",
          model: "hello",
          from: "1.0.0",
          to: "1.1.0",
          outcome: "rolled_back",
          reason: "ub1 did not start",
          log: "boom <x>\n",
        },
      ],
      false,
    ),
  );
  assert.equal(flash.kind, "error");
  assert.match(flash.text, /^Upgrade: 0 upgraded, 1 rolled back, 0 skipped in /);
  assert.match(flash.detail ?? "", /ub1: ROLLED BACK \(hello 1.0.0 -> 1.1.0\): ub1 did not start/);
  assert.match(flash.detail ?? "", /last lines:\n {4}boom <x>/);
  const ok = upgradeFlash(
    report(
      [{ name: "ub1", model: "hello", from: "1.0.0", to: "1.1.0", outcome: "upgraded" }],
      false,
    ),
  );
  assert.equal(ok.kind, "ok");
});

test("the rollback's confirmation: a POST with the CSRF token, names escaped", () => {
  const text = flat(rollbackPage({ name: "ub1", model: "hello", version: "<1.1>", viewer }).text);
  assert.match(text, /<form method="post" action="\/ui\/instances\/ub1\/rollback">/);
  assert.match(text, /name="_csrf" value="tok3n"/);
  assert.ok(text.includes("hello &lt;1.1&gt;"));
});
