import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { isAccError } from "../src/lib/errors.js";
import { openPostgresStore } from "../src/store/postgres.js";
import { freePort } from "./harness/common.js";
import { startTestPostgres } from "./harness/postgres.js";
import { storeContract } from "./store-contract.js";

const here = path.dirname(fileURLToPath(import.meta.url));

test("store contract on Postgres", async (t) => {
  const pg = await startTestPostgres(t);
  if (!pg) return;
  const { url } = await pg.freshDatabase();
  await storeContract(
    t,
    async () => {
      const store = openPostgresStore(url);
      await store.migrate();
      return store;
    },
    (resource) => ({
      file: process.execPath,
      args: [path.join(here, "store-child-postgres.js"), url, resource],
    }),
  );

  await t.test("writers from two pools never get the same port", async () => {
    const { url: fresh } = await pg.freshDatabase();
    const one = openPostgresStore(fresh);
    const two = openPostgresStore(fresh);
    try {
      await one.migrate();
      await two.migrate();
      const made = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          (i % 2 === 0 ? one : two).insertInstance(
            {
              name: `n${i}`,
              model: "hello",
              modelVersion: "1",
              modelHash: "h",
              hosts: [`n${i}.localhost`],
              params: {},
              idleTimeout: undefined,
              portRange: { min: 30000, max: 30099 },
            },
            new Date().toISOString(),
          ),
        ),
      );
      const ports = made.map((i) => i.port).sort((a, b) => a - b);
      assert.deepEqual(
        ports,
        Array.from({ length: 16 }, (_, i) => 30000 + i),
      );
    } finally {
      await one.close();
      await two.close();
    }
  });

  await t.test("Postgres down: a one-line error naming where", async () => {
    const port = await freePort();
    const store = openPostgresStore(`postgresql://acc:secret@127.0.0.1:${port}/acc`);
    try {
      await assert.rejects(
        store.listInstances(),
        (error: unknown) =>
          isAccError(error, "ACC_FAILED") &&
          error.message.startsWith(`Postgres is not reachable at 127.0.0.1:${port}: `) &&
          !error.message.includes("secret"),
      );
    } finally {
      await store.close();
    }
  });
});
