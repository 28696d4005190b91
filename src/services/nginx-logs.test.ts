import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { homePaths } from "../core/paths.js";
import type { AccContext } from "./context.js";
import { rotateNginxLogs, rotationRenames } from "./nginx-logs.js";

describe("nginx log rotation", () => {
  let home: string;
  let logs: string;
  let reloads = 0;
  let ctx: Pick<AccContext, "paths" | "config" | "proxy">;
  const MB = 1024 * 1024;

  before(async () => {
    home = await mkdtemp(path.join(os.tmpdir(), "acc-nginx-logs-"));
    const paths = homePaths(home);
    logs = paths.nginxLogs;
    await mkdir(logs, { recursive: true });
    ctx = {
      paths,
      config: { nginx_log_max_mb: 1 },
      proxy: {
        reload: () => {
          reloads++;
          return Promise.resolve();
        },
      },
    } as unknown as typeof ctx;
  });

  after(() => rm(home, { recursive: true, force: true }));

  it("shifts generations from the oldest, the live file last", () => {
    assert.deepEqual(rotationRenames("/l/access.log", 3), [
      ["/l/access.log.2", "/l/access.log.3"],
      ["/l/access.log.1", "/l/access.log.2"],
      ["/l/access.log", "/l/access.log.1"],
    ]);
  });

  it("rotates only a log past the size, keeps 3 old ones, and reloads nginx once", async () => {
    await writeFile(path.join(logs, "error.log"), "small\n");
    for (let round = 1; round <= 5; round++) {
      await writeFile(path.join(logs, "access.log"), `round ${round}\n`.padEnd(MB + 1, "."));
      assert.deepEqual(await rotateNginxLogs(ctx), [path.join(logs, "access.log")]);
    }
    assert.equal(reloads, 5);
    assert.deepEqual((await readdir(logs)).sort(), [
      "access.log.1",
      "access.log.2",
      "access.log.3",
      "error.log",
    ]);
    const first = async (file: string): Promise<string> =>
      (await readFile(path.join(logs, file), "utf8")).slice(0, 7);
    assert.deepEqual(
      await Promise.all(["access.log.1", "access.log.2", "access.log.3"].map(first)),
      ["round 5", "round 4", "round 3"],
    );
  });

  it("does nothing under the size, or with nginx_log_max_mb = 0", async () => {
    reloads = 0;
    await writeFile(path.join(logs, "access.log"), "x".repeat(MB));
    assert.deepEqual(await rotateNginxLogs(ctx), []);
    await writeFile(path.join(logs, "access.log"), "x".repeat(2 * MB));
    assert.deepEqual(
      await rotateNginxLogs({ ...ctx, config: { nginx_log_max_mb: 0 } } as typeof ctx),
      [],
    );
    assert.equal(reloads, 0);
  });
});
