// Helper process for the store contract and crash tests: takes a lease on argv[3] in the SQLite
// store argv[2] for operation argv[4] ("hold" by default), then, when argv[5] is given, sets
// that instance's hosts to it (a JSON array) as a host change does, and holds it until killed.
import { openSqliteStore } from "../src/store/open.js";

const store = openSqliteStore(process.argv[2] ?? "");
const resource = process.argv[3] ?? "";
const lease = await store.tryLease(resource, process.argv[4] ?? "hold", new Date().toISOString());
if (!("release" in lease)) throw new Error("lease was taken");
const hosts = process.argv[5];
if (hosts !== undefined) {
  await store.updateInstance(
    resource,
    { hosts: JSON.parse(hosts) as string[] },
    new Date().toISOString(),
  );
}
process.stdout.write("held\n");
setInterval(() => undefined, 1000);
