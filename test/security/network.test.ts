// What one instance's code can do to its neighbours and to acc's services over the network
// and the shared file system: squat a stopped instance's port, ask the waker to start another
// instance, slip a crawler past the wake filter, read acc's files, reach Postgres's superuser.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { test } from "node:test";
import { type AccHome } from "../harness/acc.js";
import {
  accOk,
  backupOf,
  bootHome,
  connectUnixAs,
  httpAs,
  instanceIdentity,
  instanceView,
  listAs,
  marker,
  nginxWorkerIdentity,
  openForWriteAs,
  pidFromFile,
  processInfo,
  readAs,
  requireRoot,
  runAcc,
  runProcess,
  squat,
  startCount,
  unixSocketsUnder,
} from "../harness/attacker.js";
import { requireBinary } from "../harness/common.js";

const skip = requireRoot();

// Debian's own psql, not its wrapper in /usr/bin (a Perl script that wants a home).
const PSQL = ["17", "16", "15"]
  .map((version) => `/usr/lib/postgresql/${version}/bin/psql`)
  .find((file) => existsSync(file));

/** An instance's log, as its supervisord program file names it. */
async function appLogOf(acc: AccHome, name: string): Promise<string | undefined> {
  const program = await readFile(
    path.join(acc.home, "supervisor/programs", `${name}.conf`),
    "utf8",
  );
  return /^stdout_logfile=(\S+)/m.exec(program)?.[1];
}

/** Makes sure the instance is stopped, as a visitor's first request would find it. */
async function stopped(acc: AccHome, name: string): Promise<void> {
  await accOk(acc, ["stop", name]);
  assert.equal((await instanceView(acc, name)).state, "stopped");
}

test(
  "security: ports, the waker, the wake filter, acc's files, Postgres",
  { skip, timeout: 300_000 },
  async (t) => {
    const acc = await bootHome(t, ["echo"]);
    // sxv is the victim, sxq the attacker: another instance on the same machine. The victim is
    // of a bundled model (socket activation, as acc recommends; test/ports.test.ts covers a
    // model that binds its port itself, whose port has a moment free at each start and stop).
    await accOk(acc, ["create", "hello", "--name", "sxv", "--no-start"]);
    await accOk(acc, ["create", "echo", "--name", "sxq", "--no-start"]);
    // Each has run once, so each has a log.
    for (const name of ["sxv", "sxq"]) {
      await accOk(acc, ["start", name]);
      await accOk(acc, ["stop", name]);
    }
    const attacker = await instanceIdentity("sxq");
    const victim = await instanceView(acc, "sxv");

    await t.test(
      "3. port squatting: another user cannot take a stopped instance's port",
      async (t) => {
        await stopped(acc, "sxv");
        const answer = marker("SQUATTER");
        const squatter = squat(attacker, victim.port, answer, 2000);
        t.after(() => squatter.stop());
        const outcome = (await squatter.waitOutput(/(bound|gave-up) (\S+)/, 10_000))[0];
        t.diagnostic(`squatter as ${attacker.user} on port ${victim.port}: ${outcome}`);
        const bound = outcome.startsWith("bound");

        await t.test("a visitor never gets the squatter's answer", async () => {
          const visit = await acc
            .request("sxv.localhost", { timeoutMs: 20_000 })
            .catch((error: unknown) => ({ status: 0, body: String(error) }));
          assert.ok(
            !visit.body.includes(answer),
            `the visitor got the squatter's answer: ${visit.body}`,
          );
        });

        await t.test("the bind fails, or acc start names the squatter's uid and pid", async () => {
          if (!bound) return;
          await stopped(acc, "sxv").catch(() => undefined);
          const start = await runAcc(acc, ["start", "sxv"]);
          assert.notEqual(start.code, 0, "acc start succeeded while another user held the port");
          assert.match(start.stderr, new RegExp(`\\b${attacker.uid}\\b`), "uid not named");
          assert.match(start.stderr, new RegExp(`\\b${squatter.pid}\\b`), "pid not named");
        });

        await t.test("the bind fails, or acc doctor reports the squatter", async () => {
          if (!bound) return;
          const doctor = await runAcc(acc, ["doctor"]);
          const text = doctor.stdout + doctor.stderr;
          t.diagnostic(text.trim());
          assert.match(
            text,
            new RegExp(`\\b${squatter.pid}\\b`),
            "doctor does not name the squatter",
          );
        });
        await squatter.stop();
      },
    );

    await t.test(
      "4. the waker starts nothing for an instance user's request to server_port",
      async () => {
        await stopped(acc, "sxv");
        const before = await startCount(acc, "sxv");
        const sent = await httpAs(attacker, {
          port: Number(acc.env.ACC_SERVER_PORT),
          path: "/",
          headers: { host: "sxv.localhost", "x-acc-instance": "sxv", accept: "application/json" },
        });
        t.diagnostic(`answer: ${JSON.stringify(sent).slice(0, 300)}`);
        assert.equal((await instanceView(acc, "sxv")).state, "stopped");
        assert.equal(await startCount(acc, "sxv"), before, "the victim was started");
      },
    );

    await t.test(
      "4. no unix socket under the home accepts an instance user's connection",
      async (t) => {
        const sockets = await unixSocketsUnder(acc.home);
        t.diagnostic(`sockets: ${sockets.join(", ")}`);
        assert.ok(sockets.length > 0, "found no socket under the home");
        const accepted: string[] = [];
        for (const socket of sockets) {
          const attempt = await connectUnixAs(attacker, socket);
          t.diagnostic(`${socket}: ${attempt.ok ? "connected" : attempt.code}`);
          if (attempt.ok) accepted.push(socket);
        }
        assert.deepEqual(accepted, []);
      },
    );

    await t.test(
      "7. an upgrade request from a crawler does not wake a stopped instance",
      async (t) => {
        await stopped(acc, "sxv");
        const before = await startCount(acc, "sxv");
        const outcome = await new Promise<string>((resolve) => {
          const req = http.request({
            host: "127.0.0.1",
            port: acc.httpPort,
            path: "/socket",
            agent: false,
            timeout: 20_000,
            headers: {
              host: "sxv.localhost",
              connection: "Upgrade",
              upgrade: "websocket",
              "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
              "sec-websocket-version": "13",
              "user-agent":
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            },
          });
          req.on("upgrade", (res, socket) => {
            socket.destroy();
            resolve(`upgraded ${res.statusCode}`);
          });
          req.on("response", (res) => {
            res.resume();
            resolve(`answered ${res.statusCode}`);
          });
          req.on("timeout", () => req.destroy(new Error("timed out")));
          req.on("error", (error) => resolve(`error ${error.message}`));
          req.end();
        });
        t.diagnostic(outcome);
        assert.equal((await instanceView(acc, "sxv")).state, "stopped");
        assert.equal(await startCount(acc, "sxv"), before, "the crawler woke the instance");
      },
    );

    await t.test(
      "5. an instance user reads none of acc's files nor another instance's",
      async (t) => {
        await stopped(acc, "sxv");
        const backup = await backupOf(acc, "sxv");
        // Traffic through nginx, so the logs are not empty.
        await acc.request("sxv.localhost", { timeoutMs: 20_000 });
        await accOk(acc, ["stop", "sxv"]);
        const home = acc.home;
        // The logs are wherever nginx's and supervisord's configs say, not where they are today.
        const nginxConf = await readFile(path.join(home, "nginx/nginx.conf"), "utf8");
        const supervisordConf = await readFile(
          path.join(home, "supervisor/supervisord.conf"),
          "utf8",
        );
        const reads: Record<string, string | undefined> = {
          "the store": path.join(home, "state.db"),
          "the store's WAL": path.join(home, "state.db-wal"),
          "the store's shared memory": path.join(home, "state.db-shm"),
          "acc.toml": path.join(home, "acc.toml"),
          "nginx's access log": /^\s*access_log\s+([^\s;]+)/m.exec(nginxConf)?.[1],
          "nginx's error log": /^\s*error_log\s+([^\s;]+)/m.exec(nginxConf)?.[1],
          "acc server's log": /\[program:acc-server\][^[]*?stdout_logfile=(\S+)/.exec(
            supervisordConf,
          )?.[1],
          "another instance's log": await appLogOf(acc, "sxv"),
          "a backup's archive": path.join(backup.dir, "data.tar.gz"),
          "a backup's env": path.join(backup.dir, "env"),
          "a backup's manifest": path.join(backup.dir, "manifest.json"),
          "another instance's env": path.join(home, "instances/sxv/env"),
        };
        const lists: Record<string, string> = {
          "the instances folder": path.join(home, "instances"),
          "the backups folder": path.join(home, "backups"),
          "another instance's folder": path.join(home, "instances/sxv"),
          "another instance's data": path.join(home, "instances/sxv/data"),
        };
        for (const [what, file] of Object.entries(reads)) {
          await t.test(`reading ${what} fails`, async () => {
            assert.ok(file !== undefined, `found no ${what} in acc's configs`);
            assert.ok(existsSync(file), `${file} is not there: the check would prove nothing`);
            const attempt = await readAs(attacker, file);
            assert.ok(!attempt.ok, `${attacker.user} read ${file}`);
          });
        }
        await t.test("an instance cannot write its own log", async () => {
          const log = await appLogOf(acc, "sxq");
          assert.ok(log !== undefined && existsSync(log), `sxq's log ${log} is not there`);
          const attempt = await openForWriteAs(attacker, log);
          assert.ok(!attempt.ok, `${attacker.user} may write ${log}`);
        });
        for (const [what, dir] of Object.entries(lists)) {
          await t.test(`listing ${what} fails`, async () => {
            const attempt = await listAs(attacker, dir);
            assert.ok(
              !attempt.ok,
              `${attacker.user} listed ${dir}: ${attempt.text?.replaceAll("\n", " ")}`,
            );
          });
        }
      },
    );

    await t.test(
      "6. nginx's workers and the managed Postgres run as different users",
      async (t) => {
        const nginx = await nginxWorkerIdentity(acc);
        const postmaster = await pidFromFile(path.join(acc.home, "postgres/data/postmaster.pid"));
        const postgresUid = (await processInfo(postmaster)).uid;
        t.diagnostic(`nginx workers: ${nginx.user} (${nginx.uid}); postgres: uid ${postgresUid}`);
        assert.notEqual(nginx.uid, 0, "nginx's workers run as root");
        assert.notEqual(nginx.uid, postgresUid);
      },
    );

    await t.test(
      "6. nginx's worker user cannot open a superuser session on the managed cluster",
      { skip: requireBinary(PSQL !== undefined, "psql") },
      async (t) => {
        const nginx = await nginxWorkerIdentity(acc);
        const psql = await runProcess(
          PSQL ?? "psql",
          [
            "-X",
            "-w",
            "-h",
            path.join(acc.home, "postgres/run"),
            "-p",
            String(acc.env.ACC_POSTGRES_PORT),
            "-U",
            "acc",
            "-d",
            "postgres",
            "-tAc",
            "select current_user, usesuper from pg_user where usename = current_user",
          ],
          {
            as: nginx,
            timeoutMs: 15_000,
            env: { PATH: "/usr/bin:/bin", PGCONNECT_TIMEOUT: "5", HOME: "/nonexistent" },
          },
        );
        t.diagnostic(
          `psql as ${nginx.user}: exit ${psql.code}: ${(psql.stdout + psql.stderr).trim()}`,
        );
        assert.notEqual(psql.code, 0, `${nginx.user} opened a session: ${psql.stdout.trim()}`);
      },
    );
  },
);
