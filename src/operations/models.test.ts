import assert from "node:assert/strict";
import { test } from "node:test";
import { describeInstanceVersions, formatBytes, renderPrune } from "./models.js";

test("sizes read as a sysadmin reads them", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1500), "1.5 kB");
  assert.equal(formatBytes(12_345_678), "12 MB");
});

test("acc models prune says what it removed and the space freed", () => {
  const removed = [
    { folder: "hello-0.9.0-bbbbbbbbbbbb", bytes: 2_500_000, why: "unused" as const },
    { folder: "hello-1.0.0-aaaaaaaaaaaa.tmp-7-1", bytes: 1_000, why: "unfinished" as const },
  ];
  assert.equal(
    renderPrune({ dry_run: false, removed, freed_bytes: 2_501_000, kept: 1 }),
    [
      "removed hello-0.9.0-bbbbbbbbbbbb (2.5 MB)",
      "removed hello-1.0.0-aaaaaaaaaaaa.tmp-7-1 (1.0 kB, an unfinished copy)",
      "freed 2.5 MB (1 in use kept)",
    ].join("\n"),
  );
  assert.equal(
    renderPrune({ dry_run: true, removed: removed.slice(0, 1), freed_bytes: 2_500_000, kept: 0 }),
    "would remove hello-0.9.0-bbbbbbbbbbbb (2.5 MB)\nwould free 2.5 MB (0 in use kept)",
  );
  assert.equal(
    renderPrune({ dry_run: false, removed: [], freed_bytes: 0, kept: 2 }),
    "no code folder to remove (2 in use kept)",
  );
});

test("acc models says how many instances run each version, the current one first", () => {
  assert.equal(describeInstanceVersions({}, "1.1.0"), "-");
  assert.equal(
    describeInstanceVersions({ "1.0.0": 5, "0.9.0": 7, "1.1.0": 2 }, "1.1.0"),
    "2 on 1.1.0, 7 on 0.9.0, 5 on 1.0.0",
  );
  assert.equal(describeInstanceVersions({ "1.0.0": 1 }, undefined), "1 on 1.0.0");
});
