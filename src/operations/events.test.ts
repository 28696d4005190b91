import assert from "node:assert/strict";
import { test } from "node:test";
import { eventJson, renderEvents } from "./events.js";

test("events table: one line per event, '-' for what is missing", () => {
  const events = [
    eventJson({
      id: 1,
      time: "2026-11-26T10:00:00.000Z",
      instance: "acme",
      action: "stop",
      cause: "idle",
      outcome: "ok",
      durationMs: 350,
      message: "idle for 16m12s (timeout 15m)",
    }),
    eventJson({
      id: 2,
      time: "2026-11-26T10:01:00.000Z",
      instance: null,
      action: "boot",
      cause: null,
      outcome: "failed",
      durationMs: null,
      message: "two\nlines",
    }),
  ];
  assert.deepEqual(events[0], {
    id: 1,
    time: "2026-11-26T10:00:00.000Z",
    instance: "acme",
    action: "stop",
    cause: "idle",
    outcome: "ok",
    duration_ms: 350,
    message: "idle for 16m12s (timeout 15m)",
  });
  const lines = renderEvents(events).split("\n");
  assert.equal(lines.length, 3);
  assert.match(lines[0] ?? "", /^TIME\s+INSTANCE\s+ACTION\s+CAUSE\s+OUTCOME\s+DURATION\s+MESSAGE$/);
  assert.match(
    lines[1] ?? "",
    /^\d{4}-\d\d-\d\d \d\d:\d\d:00\s+acme\s+stop\s+idle\s+ok\s+350ms\s+idle for 16m12s \(timeout 15m\)$/,
  );
  assert.match(lines[2] ?? "", /\s-\s+boot\s+-\s+failed\s+-\s+two lines$/);
});
