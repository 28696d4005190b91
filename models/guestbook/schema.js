// The guestbook's schema, made at create (setup.js) and brought up to date by an upgrade
// (migrate.js). Each statement is safe to run again.
export async function migrate(client) {
  await client.query(`CREATE TABLE IF NOT EXISTS entries (
    id serial PRIMARY KEY,
    author text NOT NULL,
    message text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`);
  // 1.1.0: entries can be liked. Entries made by 1.0.0 start at 0.
  await client.query(
    "ALTER TABLE entries ADD COLUMN IF NOT EXISTS likes integer NOT NULL DEFAULT 0",
  );
  await client.query(`CREATE TABLE IF NOT EXISTS admins (
    email text PRIMARY KEY,
    password_hash text NOT NULL
  )`);
}
