import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { unifiedDiff } from "./line-diff.js";

const LABELS: [string, string] = ["a", "b"];

describe("unifiedDiff", () => {
  it("is empty for the same text", () => {
    assert.equal(unifiedDiff("x\ny\n", "x\ny\n", LABELS), "");
  });

  it("gives one hunk with 3 lines of context, as diff -u does", () => {
    const before = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
    const after = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
    assert.equal(
      unifiedDiff(before, after, LABELS),
      "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n",
    );
  });

  it("splits changes far apart into two hunks and joins near ones", () => {
    const lines = Array.from({ length: 20 }, (_, i) => String(i + 1));
    const far = [...lines];
    far[1] = "two";
    far[17] = "eighteen";
    const diff = unifiedDiff(`${lines.join("\n")}\n`, `${far.join("\n")}\n`, LABELS);
    assert.deepEqual(
      diff.split("\n").filter((l) => l.startsWith("@@")),
      ["@@ -1,5 +1,5 @@", "@@ -15,6 +15,6 @@"],
    );
    const near = [...lines];
    near[1] = "two";
    near[7] = "eight";
    const joined = unifiedDiff(`${lines.join("\n")}\n`, `${near.join("\n")}\n`, LABELS);
    assert.deepEqual(
      joined.split("\n").filter((l) => l.startsWith("@@")),
      ["@@ -1,11 +1,11 @@"],
    );
  });

  it("shows a new file and a removed one", () => {
    assert.equal(unifiedDiff("", "x\n", LABELS), "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x\n");
    assert.equal(unifiedDiff("x\ny\n", "", LABELS), "--- a\n+++ b\n@@ -1,2 +0,0 @@\n-x\n-y\n");
  });
});
