import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { DEFAULT_PAGES, renderPage, WAIT_PATH } from "./pages.js";

test("acc's pages: self-contained HTML, values escaped", async () => {
  for (const html of Object.values(DEFAULT_PAGES)) {
    assert.doesNotMatch(html, /<(link|img)\b|src=|https?:\/\//, "no external assets");
  }
  const page = await renderPage("failed", { name: "acme", reason: "<script>x</script>" });
  assert.match(page, /acme could not start/);
  assert.match(page, /&#60;script&#62;x&#60;\/script&#62;/);
  assert.doesNotMatch(page, /<script>x/);
  const waiting = await renderPage("waiting", { name: "acme" });
  assert.ok(
    waiting.includes(JSON.stringify(WAIT_PATH)),
    "the waiting page long-polls the wait path",
  );
});

test("a model's own pages/<kind>.html overrides acc's", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "acc-pages-"));
  try {
    await mkdir(path.join(dir, "pages"));
    await writeFile(path.join(dir, "pages", "suspended.html"), "<p>{{ name }} is on holiday</p>");
    assert.equal(await renderPage("suspended", { name: "acme" }, dir), "<p>acme is on holiday</p>");
    assert.match(
      await renderPage("failed", { name: "acme" }, dir),
      /acme could not start/,
      "others stay acc's",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
