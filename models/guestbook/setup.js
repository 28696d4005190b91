// Run once at create (acc's [setup]): the schema and the admin account. Safe to run again.
import { randomBytes, scryptSync } from "node:crypto";
import pg from "pg";
import { migrate } from "./schema.js";

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
try {
  await migrate(client);
  const salt = randomBytes(16).toString("hex");
  const hash = `scrypt:${salt}:${scryptSync(process.env.ADMIN_PASSWORD ?? "", salt, 32).toString("hex")}`;
  await client.query(
    "INSERT INTO admins (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO UPDATE SET password_hash = $2",
    [process.env.ADMIN_EMAIL, hash],
  );
  console.log(`guestbook: schema ready, admin ${process.env.ADMIN_EMAIL}`);
} finally {
  await client.end();
}
