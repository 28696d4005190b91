import assert from "node:assert/strict";
import { test } from "node:test";
import { tarHeader } from "./backup-archive.js";

test("tarHeader writes a ustar header whose checksum tar accepts", () => {
  const header = tarHeader("ua1-20261203T071800743Z/env", 1234, 1_700_000_000);
  assert.equal(header.length, 512);
  assert.equal(header.toString("ascii", 0, 28), "ua1-20261203T071800743Z/env\0");
  assert.equal(header.toString("ascii", 124, 136), `${(1234).toString(8).padStart(11, "0")}\0`);
  assert.equal(header.toString("ascii", 257, 263), "ustar\0");
  const stored = parseInt(header.toString("ascii", 148, 154), 8);
  const copy = Buffer.from(header);
  copy.write("        ", 148, "ascii");
  assert.equal(
    stored,
    copy.reduce((sum, byte) => sum + byte, 0),
  );
});
