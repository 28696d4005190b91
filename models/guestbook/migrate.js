// Run by `acc upgrade` ([upgrade] in model.toml), as the instance's user, before the new
// version starts: brings the instance's schema up to this version's.
import pg from "pg";
import { migrate } from "./schema.js";

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
try {
  await migrate(client);
  const { rows } = await client.query("SELECT count(*)::int AS n FROM entries");
  console.log(`guestbook: schema migrated to 1.1.0 (entries.likes), ${rows[0].n} entries kept`);
} finally {
  await client.end();
}
