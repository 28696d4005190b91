// Runs every compiled test file under dist/ with node's test runner.
// Node 20's runner takes no globs, so the files are listed here.
import { readdirSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import path from "node:path";

function find(dir, out) {
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) find(full, out);
    else if (entry.endsWith(".test.js")) out.push(full);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = [...find("dist/src", []), ...find("dist/test", [])].sort();
if (filter.length > 0) files = files.filter((f) => filter.some((word) => f.includes(word)));
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=2", "--enable-source-maps", ...files],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
