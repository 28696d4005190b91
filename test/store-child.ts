// Helper process for the store contract: takes a lease on argv[3] in the SQLite store argv[2] and holds it until killed.
import { openSqliteStore } from "../src/store/open.js";

const store = openSqliteStore(process.argv[2] ?? "");
const lease = await store.tryLease(process.argv[3] ?? "", "hold", new Date().toISOString());
if (!("release" in lease)) throw new Error("lease was taken");
process.stdout.write("held\n");
setInterval(() => undefined, 1000);
