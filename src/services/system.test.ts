import assert from "node:assert/strict";
import { test } from "node:test";
import { stopInstances } from "./system.js";

test("stopInstances stops side by side, at most 8 at once, and reports a failure after all", async () => {
  let running = 0;
  let most = 0;
  const stopped: string[] = [];
  const names = Array.from({ length: 20 }, (_, i) => `i${i}`);
  const started = Date.now();
  await assert.rejects(
    stopInstances(names, async (name) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 100));
      running--;
      stopped.push(name);
      if (name === "i3") throw new Error("i3 did not stop");
    }),
    /i3 did not stop/,
  );
  const ms = Date.now() - started;
  assert.equal(most, 8);
  assert.equal(stopped.length, 20, "a failure does not keep the others from stopping");
  assert.ok(ms >= 290 && ms < 1000, `20 stops of 100 ms, 8 at once: ${ms} ms`);
});
