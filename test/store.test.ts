import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { openSqliteStore } from "../src/store/open.js";
import { makeTempDir, removeDir } from "./harness/common.js";
import { storeContract } from "./store-contract.js";

const here = path.dirname(fileURLToPath(import.meta.url));

test("store contract on SQLite", async (t) => {
  const dir = await makeTempDir("acc-store-");
  t.after(() => removeDir(dir));
  const file = path.join(dir, "state.db");
  await storeContract(
    t,
    async () => {
      const store = openSqliteStore(file);
      await store.migrate();
      return store;
    },
    (resource) => ({
      file: process.execPath,
      args: [path.join(here, "store-child.js"), file, resource],
    }),
  );
});
