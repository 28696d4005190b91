// acc's nginx logs rotate past nginx_log_max_mb (acc server's monitor does it), and the idle
// clock reads across a rotation: the old file is finished from where the last pass stopped,
// then the new one from its start; no request is lost or read twice.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { readAccessLogActivity } from "../src/services/activity.js";
import { rotateNginxLogs } from "../src/services/nginx-logs.js";
import { openContext } from "../src/services/open.js";
import { createAccHome, type AccHome } from "./harness/acc.js";
import { waitFor } from "./harness/common.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const ACC_ROOT = path.resolve(here, "../..");
/** nginx writes its access log buffer every second (flush=1s). */
const FLUSH_MS = 1300;
// Long request lines make a big log quickly: 200 of them are over 1 MB.
const PADDING = "x".repeat(6000);

async function bootedHome(t: { after(fn: () => Promise<void>): void }, env: NodeJS.ProcessEnv) {
  const acc = await createAccHome({
    env: { ACC_NGINX_LOG_MAX_MB: "1", ...env },
  });
  t.after(() => acc.cleanup());
  await acc.ok(["boot"]);
  return acc;
}

/**
 * count requests to host, 8 at a time, each with its own marker in its path; padded ones fill
 * the log fast (the rotations), short ones barely (only 3 old generations are kept: a flow that
 * caused rotations of its own could push its first lines out, by design).
 */
async function requests(
  acc: AccHome,
  host: string,
  marker: string,
  count: number,
  padding = PADDING,
) {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = next++;
      const answer = await acc.request(host, { path: `/?${marker}-${n}-${padding}` });
      assert.equal(answer.status, 200, `${host} ${marker}-${n}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

async function logFiles(acc: AccHome): Promise<string[]> {
  return (await readdir(path.join(acc.home, "nginx/logs"))).sort();
}

/** How many lines of all access.log generations hold each marker-N. */
async function linesPerRequest(acc: AccHome, marker: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const file of await logFiles(acc)) {
    if (!file.startsWith("access.log")) continue;
    const text = await readFile(path.join(acc.home, "nginx/logs", file), "latin1");
    for (const match of text.matchAll(new RegExp(`\\?(${marker}-\\d+)-`, "g"))) {
      counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + 1);
    }
  }
  return counts;
}

test(
  "a rotation between two reads of the access log loses no request",
  { timeout: 180_000 },
  async (t) => {
    // The test reads and rotates itself: acc server's loop must not.
    const acc = await bootedHome(t, { ACC_MONITOR_INTERVAL: "1h" });
    for (const name of ["md-lra", "md-lrb", "md-lrc"])
      await acc.ok(["create", "hello", "--name", name, "--idle-timeout", "never"]);
    const ctx = await openContext({ home: acc.home, env: acc.env, accRoot: ACC_ROOT });
    t.after(() => ctx.store.close());

    await requests(acc, "md-lra.localhost", "a", 200);
    await sleep(FLUSH_MS);
    assert.deepEqual([...(await readAccessLogActivity(ctx)).keys()], ["md-lra"]);

    // Written after that read and before the rotation: only the renamed file has it.
    await requests(acc, "md-lrb.localhost", "b", 1);
    assert.deepEqual(await rotateNginxLogs(ctx), [path.join(acc.home, "nginx/logs/access.log")]);
    await requests(acc, "md-lrc.localhost", "c", 1);
    await sleep(FLUSH_MS);
    assert.ok((await logFiles(acc)).includes("access.log.1"));
    const old = await readFile(path.join(acc.home, "nginx/logs/access.log.1"), "latin1");
    const current = await readFile(path.join(acc.home, "nginx/logs/access.log"), "latin1");
    assert.match(old, / md-lrb /, "the request before the rotation is in the old file");
    assert.match(current, / md-lrc /, "nginx writes the new file after the rotation");
    assert.doesNotMatch(current, / md-lr[ab] /);

    const seen = await readAccessLogActivity(ctx);
    assert.deepEqual(
      [...seen.keys()].sort(),
      ["md-lrb", "md-lrc"],
      "md-lra's lines are not read again",
    );
    assert.deepEqual([...(await readAccessLogActivity(ctx)).keys()], [], "nor any line twice");

    // Under the size: nothing rotates.
    assert.deepEqual(await rotateNginxLogs(ctx), []);
  },
);

test(
  "acc server rotates the logs while requests flow; the idle clock follows",
  { timeout: 180_000 },
  async (t) => {
    const acc = await bootedHome(t, { ACC_MONITOR_INTERVAL: "1s" });
    await acc.ok(["create", "hello", "--name", "md-lrs", "--idle-timeout", "never"]);
    let sent = 0;
    let lastSentAt = 0;
    let flowing = true;
    const flow = (async () => {
      while (flowing) {
        await requests(acc, "md-lrs.localhost", `s${sent}`, 1, "short");
        sent++;
        lastSentAt = Date.now();
      }
    })();
    // Padding alone: 200 more requests push the log past 1 MB.
    await requests(acc, "md-lrs.localhost", "pad", 400);
    await waitFor(
      "a rotation by acc server",
      async () => ((await logFiles(acc)).includes("access.log.1") ? true : undefined),
      30_000,
      200,
    );
    const rotatedAt = Date.now();
    await waitFor(
      "requests after the rotation",
      () => (Date.now() > rotatedAt + 3000 ? true : undefined),
      10_000,
      100,
    );
    flowing = false;
    await flow;
    await sleep(FLUSH_MS + 2000); // a flush, then at least one more pass

    const log = await readFile(path.join(acc.home, "supervisor/logs/acc-server.log"), "utf8");
    assert.match(log, /monitor: rotated .*access\.log/);
    const show = JSON.parse(await acc.ok(["show", "md-lrs", "--json"])) as {
      last_activity_at: string;
    };
    assert.ok(
      Date.parse(show.last_activity_at) >= lastSentAt - 1000,
      `last activity ${show.last_activity_at} follows the last request (${new Date(lastSentAt).toISOString()})`,
    );
    // nginx lost no line to the rotation and wrote none twice.
    const counts = await linesPerRequest(acc, "s\\d+");
    for (let n = 0; n < sent; n++) assert.equal(counts.get(`s${n}-0`), 1, `request s${n}`);
    assert.ok(sent > 10, `${sent} requests flowed`);
  },
);
