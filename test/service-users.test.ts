// As root: nginx's workers and the managed Postgres each run as their own OS user, neither of
// which an exposed process can turn into a Postgres superuser, and acc's own files are
// readable by acc only (design.md, "Users and privileges"). Also the move of a home made by an
// older acc, whose one service user did both, to this layout.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { chmod, cp, lstat, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { parseEnvFile } from "../src/core/instance-env.js";
import { findPostgresBin } from "../src/drivers/postgres/index.js";
import { ExecError, exec } from "../src/lib/exec.js";
import { createUsers } from "../src/services/users.js";
import { createAccHome, httpRequest, type AccHome } from "./harness/acc.js";
import { waitFor } from "./harness/common.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const ECHO_MODEL = path.resolve(here, "../../test/fixtures/models/echo");
const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : "needs root: acc's own users exist only as root";
const NGINX_USER = "acc_nginx";
const POSTGRES_USER = "acc_postgres";
/** The one service user of acc before nginx_user and postgres_user. */
const OLD_USER = "acc";
const TEMP_DIRS = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"];

interface Ids {
  uid: number;
  gid: number;
}

async function account(name: string): Promise<Ids | undefined> {
  return createUsers({ exec }).lookup(name);
}

/** Real, effective, saved and filesystem ids of a process, from /proc. */
async function processIds(pid: number): Promise<{ uids: number[]; gids: number[] }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const ids = (key: string): number[] =>
    (new RegExp(`^${key}:\\s+(.*)$`, "m").exec(status)?.[1] ?? "").trim().split(/\s+/).map(Number);
  return { uids: ids("Uid"), gids: ids("Gid") };
}

async function childrenOf(parent: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // ended meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid === parent) pids.push(Number(entry));
  }
  return pids;
}

async function pidIn(file: string): Promise<number> {
  return Number((await readFile(file, "utf8")).split("\n")[0]?.trim());
}

async function userName(uid: number): Promise<string> {
  try {
    const { stdout } = await exec("getent", ["passwd", String(uid)], { timeoutMs: 5_000 });
    return stdout.split(":")[0] ?? String(uid);
  } catch {
    return `uid ${uid}`;
  }
}

interface Expected {
  /** Relative to the home ("" for the home itself). */
  path: string;
  mode: number;
  /** User name; root when not given. */
  owner?: string;
}

/** Every expectation the files on disk do not meet, one line each (empty when all are met). */
async function mismatches(home: string, expected: readonly Expected[]): Promise<string[]> {
  const out: string[] = [];
  for (const want of expected) {
    const full = path.join(home, want.path);
    let info;
    try {
      info = await lstat(full);
    } catch {
      out.push(`${want.path || "HOME"}: missing`);
      continue;
    }
    const mode = info.mode & 0o777;
    if (mode !== want.mode) {
      out.push(`${want.path || "HOME"}: mode 0${mode.toString(8)}, want 0${want.mode.toString(8)}`);
    }
    const ownerUid = want.owner === undefined ? 0 : (await account(want.owner))?.uid;
    if (info.uid !== ownerUid) {
      out.push(
        `${want.path || "HOME"}: owner ${await userName(info.uid)}, want ${want.owner ?? "root"}`,
      );
    }
  }
  return out;
}

/** What acc's own files must look like on a booted home (README, "Home layout"). */
async function expectedLayout(home: string): Promise<Expected[]> {
  const expected: Expected[] = [
    { path: "", mode: 0o711 },
    { path: "acc.toml", mode: 0o600 },
    { path: "state.db", mode: 0o600 },
    { path: "models", mode: 0o700 },
    { path: "code", mode: 0o711 },
    { path: "backups", mode: 0o700 },
    { path: "run", mode: 0o700 },
    { path: "supervisor", mode: 0o700 },
    { path: "supervisor/supervisord.log", mode: 0o600 },
    { path: "supervisor/logs", mode: 0o700 },
    { path: "supervisor/logs/acc-server.log", mode: 0o600 },
    { path: "supervisor/logs/acc-postgres.log", mode: 0o600 },
    { path: "nginx/logs", mode: 0o700 },
    { path: "nginx/logs/access.log", mode: 0o600 },
    { path: "nginx/logs/error.log", mode: 0o600 },
    { path: "postgres", mode: 0o700, owner: POSTGRES_USER },
    { path: "postgres/data", mode: 0o700, owner: POSTGRES_USER },
    { path: "postgres/run", mode: 0o700, owner: POSTGRES_USER },
    ...TEMP_DIRS.map((dir) => ({ path: `nginx/temp/${dir}`, mode: 0o700, owner: NGINX_USER })),
  ];
  // SQLite's side files exist while a connection is open (acc server keeps one).
  for (const side of ["state.db-wal", "state.db-shm"]) {
    if ((await readdir(home)).includes(side)) expected.push({ path: side, mode: 0o600 });
  }
  for (const dir of await readdir(path.join(home, "code"))) {
    expected.push({ path: `code/${dir}`, mode: 0o755 });
  }
  for (const name of await readdir(path.join(home, "backups"))) {
    expected.push({ path: `backups/${name}`, mode: 0o700 });
    for (const stamp of await readdir(path.join(home, "backups", name))) {
      expected.push({ path: `backups/${name}/${stamp}`, mode: 0o700 });
      for (const file of await readdir(path.join(home, "backups", name, stamp))) {
        expected.push({ path: `backups/${name}/${stamp}/${file}`, mode: 0o600 });
      }
    }
  }
  return expected;
}

/** A model with a database and no npm dependencies: the echo fixture plus `database`. */
async function addModels(acc: AccHome): Promise<void> {
  await cp(ECHO_MODEL, path.join(acc.home, "models/echo"), { recursive: true });
  const dbModel = path.join(acc.home, "models/usdb");
  await cp(ECHO_MODEL, dbModel, { recursive: true });
  const manifest = await readFile(path.join(dbModel, "model.toml"), "utf8");
  await writeFile(
    path.join(dbModel, "model.toml"),
    manifest.replace('name = "echo"', 'name = "usdb"\ndatabase = "postgres"'),
  );
}

async function databaseUrl(acc: AccHome, name: string): Promise<string> {
  const env = parseEnvFile(await readFile(path.join(acc.home, "instances", name, "env"), "utf8"));
  assert.ok(env.DATABASE_URL, `${name} has a DATABASE_URL`);
  return env.DATABASE_URL;
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(sql)).rows;
  } finally {
    await client.end();
  }
}

interface Psql {
  ok: boolean;
  output: string;
}

/** psql as the OS user ids (root when undefined), as the cluster's superuser role `acc`. */
async function psqlAsSuperuser(
  acc: AccHome,
  ids: Ids | undefined,
  host: string,
  sql: string,
): Promise<Psql> {
  const bin = await findPostgresBin(exec, { dataDir: path.join(acc.home, "postgres/data") });
  const args = ["-X", "-w", "-A", "-t", "-h", host, "-p", String(acc.env.ACC_POSTGRES_PORT)];
  try {
    const { stdout } = await exec(
      `${bin}/psql`,
      [...args, "-U", "acc", "-d", "postgres", "-c", sql],
      {
        cwd: "/",
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PGPASSFILE: "/dev/null" },
        timeoutMs: 15_000,
        ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
      },
    );
    return { ok: true, output: stdout.trim() };
  } catch (error) {
    if (!(error instanceof ExecError)) throw error;
    return { ok: false, output: error.stderr.trim() };
  }
}

/** User names (and ids) nginx's workers run as: the master's children. */
async function nginxWorkerIds(home: string): Promise<Ids[]> {
  const master = await pidIn(path.join(home, "run/nginx.pid"));
  const workers = await childrenOf(master);
  assert.ok(workers.length > 0, "nginx has workers");
  const out: Ids[] = [];
  for (const pid of workers) {
    const { uids, gids } = await processIds(pid);
    assert.equal(new Set(uids).size, 1, `worker ${pid}: real, effective and saved uid agree`);
    out.push({ uid: uids[0]!, gid: gids[0]! });
  }
  return out;
}

async function postmasterUser(home: string): Promise<string> {
  const pid = await pidIn(path.join(home, "postgres/data/postmaster.pid"));
  const { uids } = await processIds(pid);
  assert.equal(new Set(uids).size, 1);
  return userName(uids[0]!);
}

/** The files under the cluster's folder whose owner is not postgres_user. */
async function notOwnedByPostgres(dir: string, uid: number): Promise<string[]> {
  const out: string[] = [];
  const info = await lstat(dir);
  if (info.uid !== uid) out.push(dir);
  if (info.isDirectory()) {
    for (const entry of await readdir(dir)) {
      out.push(...(await notOwnedByPostgres(path.join(dir, entry), uid)));
    }
  }
  return out;
}

async function echoUpload(acc: AccHome, name: string): Promise<void> {
  // 1 MB: more than nginx keeps in memory, so the worker writes it to client_body/.
  const body = randomBytes(1024 * 1024).toString("base64");
  const answer = await httpRequest(acc.httpPort, `${name}.localhost`, {
    method: "POST",
    path: "/upload",
    body,
    timeoutMs: 30_000,
  });
  assert.equal(answer.status, 200, answer.body);
  const echoed = JSON.parse(answer.body) as { bytes: number; sha256: string };
  assert.equal(echoed.bytes, Buffer.byteLength(body));
  assert.equal(echoed.sha256, createHash("sha256").update(body).digest("hex"));
}

async function bootedHome(t: TestContext): Promise<AccHome> {
  const acc = await createAccHome();
  t.after(() => acc.cleanup());
  await addModels(acc);
  await acc.ok(["boot"]);
  return acc;
}

test(
  "as root: nginx and Postgres run as their own users, acc's files are acc's only",
  { skip, timeout: 240_000 },
  async (t) => {
    const acc = await bootedHome(t);
    const echo = `us${process.pid}e`;
    const withDb = `us${process.pid}d`;
    await acc.ok(["create", "echo", "--name", echo]);
    await acc.ok(["create", "usdb", "--name", withDb]);
    await acc.ok(["backup", withDb]);

    await t.test("modes and owners of the home's files", async () => {
      assert.deepEqual(await mismatches(acc.home, await expectedLayout(acc.home)), []);
    });

    await t.test("nginx's workers run as nginx_user", async () => {
      const names = await Promise.all((await nginxWorkerIds(acc.home)).map((w) => userName(w.uid)));
      assert.deepEqual([...new Set(names)], [NGINX_USER]);
    });

    await t.test("the managed Postgres runs as postgres_user", async () => {
      assert.equal(await postmasterUser(acc.home), POSTGRES_USER);
    });

    await t.test("nginx's user gets no superuser session; root does", async () => {
      const worker = (await nginxWorkerIds(acc.home))[0]!;
      const sql = "select rolsuper from pg_roles where rolname = current_user";
      const socket = path.join(acc.home, "postgres/run");
      const viaSocket = await psqlAsSuperuser(acc, worker, socket, sql);
      assert.equal(viaSocket.ok, false, `over the socket: ${viaSocket.output}`);
      assert.match(viaSocket.output, /Permission denied|authentication failed/);
      const viaTcp = await psqlAsSuperuser(acc, worker, "127.0.0.1", sql);
      assert.equal(viaTcp.ok, false, `over TCP: ${viaTcp.output}`);
      assert.match(viaTcp.output, /password|authentication failed/);
      // Behind the modes of the socket and its folders, peer authentication's map is the
      // second guard: opened for a moment, the socket still lets nginx's user in as nobody.
      const file = path.join(socket, `.s.PGSQL.${acc.env.ACC_POSTGRES_PORT}`);
      const opened: [string, number][] = [
        [path.join(acc.home, "postgres"), 0o711],
        [socket, 0o711],
        [file, 0o777],
      ];
      await Promise.all(opened.map(([where, mode]) => chmod(where, mode)));
      try {
        const peer = await psqlAsSuperuser(acc, worker, socket, sql);
        assert.equal(peer.ok, false, `socket open to all: ${peer.output}`);
        assert.match(peer.output, /Peer authentication failed/);
      } finally {
        await Promise.all(opened.map(([where]) => chmod(where, 0o700)));
      }
      const root = await psqlAsSuperuser(acc, undefined, socket, sql);
      assert.deepEqual(root, { ok: true, output: "t" });
    });

    await t.test("instances still reach their code, nginx its temp folders", async () => {
      await echoUpload(acc, echo);
      await echoUpload(acc, withDb);
      assert.deepEqual(await query(await databaseUrl(acc, withDb), "select 1 as one"), [
        { one: 1 },
      ]);
    });

    await t.test("an acc.toml that still sets service_user: one line, exit 2", async () => {
      const config = path.join(acc.home, "acc.toml");
      const before = await readFile(config, "utf8");
      await writeFile(config, `${before}\nservice_user = "acc"\n`);
      const result = await acc.run(["status"]);
      await writeFile(config, before);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, /service_user/);
      assert.match(result.stderr, /nginx_user/);
      assert.match(result.stderr, /postgres_user/);
    });
  },
);

/** The owner an older acc would have given these files: its one service user. */
async function oldUser(): Promise<Ids> {
  const users = createUsers({ exec });
  const found = await users.lookup(OLD_USER);
  if (found) return found;
  try {
    return await users.ensure(OLD_USER, "/nonexistent");
  } catch (error) {
    // Another test file made it meanwhile.
    const again = await users.lookup(OLD_USER);
    if (!again) throw error;
    return again;
  }
}

/**
 * Turns a home (supervisord stopped) back into what an older acc left: one service user owning
 * the cluster and nginx's temp folders, mapped to the superuser; open modes; the old acc.toml.
 */
async function makeOld(acc: AccHome): Promise<void> {
  await oldUser();
  const owner = `${OLD_USER}:${OLD_USER}`;
  // chown -R changes links themselves and never follows them (its default, -P).
  await exec("chown", ["-R", owner, path.join(acc.home, "postgres")], { timeoutMs: 60_000 });
  for (const dir of TEMP_DIRS) {
    await exec("chown", ["-R", owner, path.join(acc.home, "nginx/temp", dir)], {
      timeoutMs: 10_000,
    });
  }
  const ident = path.join(acc.home, "postgres/data/pg_ident.conf");
  await writeFile(ident, `acc  root  acc\nacc  ${OLD_USER}  acc\n`);
  await exec("chown", [owner, ident], { timeoutMs: 10_000 });
  const config = path.join(acc.home, "acc.toml");
  const text = (await readFile(config, "utf8"))
    .split("\n")
    .filter((line) => !/(nginx_user|postgres_user)/.test(line))
    .join("\n");
  await writeFile(
    config,
    `${text}\n# As root: the system user that runs nginx workers and the managed Postgres.\n# service_user = "${OLD_USER}"\n`,
  );
  for (const [file, mode] of [
    ["", 0o755],
    ["acc.toml", 0o644],
    ["state.db", 0o644],
    ["models", 0o755],
    ["code", 0o755],
    ["nginx/logs", 0o755],
    ["nginx/logs/access.log", 0o644],
    ["supervisor/logs", 0o755],
    ["supervisor/logs/acc-server.log", 0o644],
  ] as const) {
    await chmod(path.join(acc.home, file), mode);
  }
}

/** What the running services of an older acc said about users, in their config files. */
async function useOldUserInConfigs(acc: AccHome): Promise<void> {
  const supervisord = path.join(acc.home, "supervisor/supervisord.conf");
  await writeFile(
    supervisord,
    (await readFile(supervisord, "utf8")).replace(`user=${POSTGRES_USER}`, `user=${OLD_USER}`),
  );
  const nginx = path.join(acc.home, "nginx/nginx.conf");
  await writeFile(
    nginx,
    (await readFile(nginx, "utf8")).replace(/^user .*;$/m, `user ${OLD_USER} ${OLD_USER};`),
  );
}

async function checkMoved(acc: AccHome, name: string): Promise<void> {
  const postgresUid = (await account(POSTGRES_USER))?.uid;
  assert.ok(postgresUid !== undefined, `${POSTGRES_USER} exists`);
  assert.deepEqual(await notOwnedByPostgres(path.join(acc.home, "postgres"), postgresUid), []);
  assert.equal(await postmasterUser(acc.home), POSTGRES_USER);
  const names = await Promise.all((await nginxWorkerIds(acc.home)).map((w) => userName(w.uid)));
  assert.deepEqual([...new Set(names)], [NGINX_USER]);
  const ident = await readFile(path.join(acc.home, "postgres/data/pg_ident.conf"), "utf8");
  const mapped = ident
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => line.trim().split(/\s+/)[1]);
  assert.deepEqual(mapped.sort(), ["acc_postgres", "root"]);
  assert.deepEqual(await mismatches(acc.home, await expectedLayout(acc.home)), []);
  assert.deepEqual(await query(await databaseUrl(acc, name), "select x from kept order by x"), [
    { x: 1 },
  ]);
  await echoUpload(acc, name);
}

test(
  "as root: acc boot moves a home of an older acc (one service user) to its own users",
  { skip, timeout: 300_000 },
  async (t) => {
    const acc = await bootedHome(t);
    const name = `us${process.pid}m`;
    await acc.ok(["create", "usdb", "--name", name]);
    await query(
      await databaseUrl(acc, name),
      "create table kept (x int); insert into kept values (1)",
    );

    await t.test("supervisord stopped: boot re-owns the cluster, data kept", async () => {
      await acc.ok(["shutdown"]);
      await makeOld(acc);
      await acc.ok(["boot"]);
      await checkMoved(acc, name);
    });

    await t.test(
      "supervisord running the old layout: boot stops Postgres, re-owns it, starts it",
      async () => {
        await acc.ok(["shutdown"]);
        await makeOld(acc);
        await useOldUserInConfigs(acc);
        // The older acc's supervisord, running Postgres as the old user.
        await exec("supervisord", ["-c", path.join(acc.home, "supervisor/supervisord.conf")], {
          env: acc.env,
          timeoutMs: 30_000,
        });
        await waitFor(
          "Postgres to run as the old user",
          async () => ((await postmasterUser(acc.home)) === OLD_USER ? true : undefined),
          30_000,
          100,
        );
        assert.match(await acc.ok(["boot"]), /already running/);
        await checkMoved(acc, name);
      },
    );
  },
);
