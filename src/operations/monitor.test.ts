import assert from "node:assert/strict";
import { test } from "node:test";
import { renderMonitorReport } from "./system.js";

const empty = { checked: 3, stopped: [], would_stop: [], skipped: [], errors: [], duration_ms: 4 };

test("monitor text: what was stopped and why, or that nothing was", () => {
  assert.equal(renderMonitorReport(empty, false), "nothing to stop (3 running)");
  assert.equal(renderMonitorReport(empty, true), "nothing would stop (3 running)");
  assert.equal(
    renderMonitorReport(
      {
        ...empty,
        stopped: [{ name: "acme", idle_ms: 972_000, timeout_ms: 900_000 }],
        skipped: [{ name: "shop", reason: "busy: start in progress" }],
        errors: [{ name: "blog", message: "supervisord: no such process" }],
      },
      false,
    ),
    [
      "stopped acme: idle for 16m12s (timeout 15m)",
      "skipped shop: busy: start in progress",
      "failed blog: supervisord: no such process",
    ].join("\n"),
  );
  assert.equal(
    renderMonitorReport(
      { ...empty, would_stop: [{ name: "acme", idle_ms: 61_000, timeout_ms: 60_000 }] },
      true,
    ),
    "would stop acme: idle for 1m1s (timeout 1m)",
  );
});
