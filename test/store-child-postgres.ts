// Helper process for the store contract: takes a lease on argv[3] in the Postgres store at URL argv[2] and holds it until killed.
import { openPostgresStore } from "../src/store/postgres.js";

const store = openPostgresStore(process.argv[2] ?? "");
const lease = await store.tryLease(process.argv[3] ?? "", "hold", new Date().toISOString());
if (!("release" in lease)) throw new Error("lease was taken");
process.stdout.write("held\n");
setInterval(() => undefined, 1000);
