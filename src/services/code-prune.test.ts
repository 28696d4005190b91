import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { InstanceRecord } from "../store/store.js";
import { pruneCode } from "./code-prune.js";
import type { AccContext } from "./context.js";

const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);
const USED = `hello-1.0.0-${HASH_A.slice(0, 12)}`;
const UNUSED = `hello-0.9.0-${HASH_B.slice(0, 12)}`;

/** A pid that no process has: one that just exited and was reaped. */
function deadPid(): number {
  const child = spawnSync("true");
  return child.pid ?? 0;
}

function record(name: string, modelVersion: string, modelHash: string): InstanceRecord {
  return { name, model: "hello", modelVersion, modelHash } as InstanceRecord;
}

describe("acc models prune", () => {
  let tmp: string;
  let code: string;
  /** What the store answers, one list per call (the last one repeats). */
  let answers: InstanceRecord[][];
  let ctx: AccContext;

  const folder = async (name: string, bytes = 10_000): Promise<void> => {
    await mkdir(path.join(code, name, "lib"), { recursive: true });
    await writeFile(path.join(code, name, "lib", "index.js"), "x".repeat(bytes));
  };

  beforeEach(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "acc-prune-"));
    code = path.join(tmp, "code");
    answers = [[record("one", "1.0.0", HASH_A)]];
    ctx = {
      paths: { code },
      store: {
        listInstances: () => Promise.resolve(answers.length > 1 ? answers.shift() : answers[0]),
      },
    } as unknown as AccContext;
    await folder(USED);
    await folder(UNUSED, 50_000);
  });

  afterEach(() => rm(tmp, { recursive: true, force: true }));

  it("--dry-run lists the unused folder and its size, and removes nothing", async () => {
    const result = await pruneCode(ctx, { dryRun: true });
    assert.deepEqual(
      result.removed.map((f) => [f.folder, f.why]),
      [[UNUSED, "unused"]],
    );
    assert.ok(result.freed_bytes >= 50_000, `freed ${result.freed_bytes}`);
    assert.equal(result.kept, 1);
    assert.deepEqual((await readdir(code)).sort(), [UNUSED, USED].sort());
  });

  it("removes unused folders and dead creates' copies, keeps the used ones", async () => {
    const dead = deadPid();
    await folder(`${USED}.tmp-${dead}-1700000000000`);
    await folder(`${USED}.tmp-${process.pid}-1700000000000`); // a create copying right now
    const result = await pruneCode(ctx, { dryRun: false });
    assert.deepEqual(result.removed.map((f) => f.why).sort(), ["unfinished", "unused"]);
    assert.deepEqual(
      (await readdir(code)).sort(),
      [USED, `${USED}.tmp-${process.pid}-1700000000000`].sort(),
    );
    assert.equal(result.freed_bytes, result.removed[0]!.bytes + result.removed[1]!.bytes);
  });

  it("puts a folder back when a create took it meanwhile", async () => {
    answers = [
      [record("one", "1.0.0", HASH_A)],
      [record("one", "1.0.0", HASH_A), record("two", "0.9.0", HASH_B)],
    ];
    const result = await pruneCode(ctx, { dryRun: false });
    assert.deepEqual(result.removed, []);
    assert.equal(result.kept, 2);
    assert.deepEqual((await readdir(code)).sort(), [UNUSED, USED].sort());
  });

  it("a home without code folders has nothing to remove", async () => {
    await rm(code, { recursive: true });
    assert.deepEqual(await pruneCode(ctx, { dryRun: false }), {
      dry_run: false,
      removed: [],
      freed_bytes: 0,
      kept: 0,
    });
  });
});
