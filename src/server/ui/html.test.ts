import assert from "node:assert/strict";
import { test } from "node:test";
import { escapeHtml, html, isSafeHtml, raw } from "./html.js";

// Called through another name: prettier reformats templates tagged `html` as HTML.
const h = html;

const HOSTILE = `<script>alert("x")</script>'"&\`<img src=x onerror=alert(1)>`;

test("html escapes every interpolated value: between tags and inside attributes", () => {
  const out = h`<p title="${HOSTILE}">${HOSTILE}</p><p title='${HOSTILE}'></p>`.text;
  assert.ok(!out.includes("<script>"), out);
  assert.ok(!out.includes("<img"), out);
  // No quote of either kind survives to close an attribute early.
  assert.equal(out.match(/"/g)?.length, 2);
  assert.equal(out.match(/'/g)?.length, 2);
  assert.ok(out.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&quot;&amp;&#96;"));
});

test("html keeps its own fragments and arrays of them, escapes everything else", () => {
  const name = "<b>";
  const rows = [h`<li>${name}</li>`, h`<li>${"&"}</li>`];
  assert.equal(h`<ul>${rows}</ul>`.text, "<ul><li>&lt;b&gt;</li><li>&amp;</li></ul>");
  // A look-alike object is text, not a fragment: only html and raw make safe ones.
  const fake = { text: "<script>x</script>" };
  assert.equal(h`${fake}`.text, "[object Object]");
  assert.equal(isSafeHtml(fake), false);
  assert.equal(h`${raw("<hr>")}`.text, "<hr>");
  assert.equal(h`${null}${undefined}${false}${0}`.text, "0");
});

test("escapeHtml leaves plain text alone", () => {
  assert.equal(escapeHtml("acme-1.example.com"), "acme-1.example.com");
});
