// The opt-in wake trace (ACC_TRACE) that bench/wake reads: acc server's and acc-launch's marks
// of one wake, each once and in the order the wake goes through them, on one clock.
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { createAccHome } from "./harness/acc.js";
import { makeTempDir } from "./harness/common.js";

/** The marks of one wake, in this order (the health check's run alongside, checked apart). */
const WAKE_ORDER = [
  "request",
  "decided",
  "room",
  "lease",
  "checked",
  "state-starting",
  "cgroup",
  "launch-start",
  "launch-begin",
  "launch-cgroup",
  "launch-env",
  "launch-port",
  "launch-exec",
  "answer-early",
  "answer-sent",
];

test("trace: ACC_TRACE records where a wake goes", { timeout: 120_000 }, async (t) => {
  const dir = await makeTempDir("acc-trace-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "trace");
  const acc = await createAccHome({ env: { ACC_TRACE: file } });
  t.after(() => acc.cleanup());
  await acc.ok(["boot"]);
  await acc.ok(["create", "hello", "--name", "trw", "--no-start"]);
  // Emptied, not removed: acc server keeps the file open.
  await writeFile(file, "");
  const before = Date.now();
  const answer = await acc.request("trw.localhost", { timeoutMs: 30_000 });
  const after = Date.now();
  assert.equal(answer.status, 200, answer.body);

  // acc server writes its last marks after the answer: the start's event comes last.
  let lines: string[] = [];
  for (let i = 0; i < 100 && !lines.some((l) => l.endsWith(" event")); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    lines = (await readFile(file, "utf8")).split("\n").filter((l) => l !== "");
  }
  const marks = lines.map((line) => {
    const [at = "", instance = "", point = ""] = line.split(" ");
    return { at: Number(at), instance, point };
  });
  t.diagnostic(lines.join("\n"));
  for (const mark of marks) {
    assert.equal(mark.instance, "trw", `a mark of another instance: ${JSON.stringify(mark)}`);
    // One clock: every mark falls within the request as this process saw it (1 ms of slack for
    // Date.now()'s resolution).
    assert.ok(mark.at >= before - 1 && mark.at <= after + 1000, `mark out of the wake: ${mark.at}`);
  }
  const firstAt = (point: string): number => {
    const found = marks.find((m) => m.point === point);
    assert.ok(found, `no ${point} mark in:\n${lines.join("\n")}`);
    return found.at;
  };
  for (let i = 1; i < WAKE_ORDER.length; i++) {
    const [a = "", b = ""] = [WAKE_ORDER[i - 1], WAKE_ORDER[i]];
    assert.ok(firstAt(a) <= firstAt(b), `${a} after ${b}`);
  }
  for (const point of ["healthy", "owner-checked", "state-running", "event"])
    assert.ok(firstAt("launch-exec") <= firstAt(point), `${point} before launch-exec`);
  for (const point of WAKE_ORDER.filter((p) => !p.startsWith("answer")))
    assert.equal(marks.filter((m) => m.point === point).length, 1, `${point} marked twice`);
});

test("trace: without ACC_TRACE nothing is traced", { timeout: 60_000 }, async () => {
  const { trace } = await import("../src/lib/trace.js");
  assert.equal(process.env.ACC_TRACE, undefined);
  assert.equal(trace, undefined);
});
