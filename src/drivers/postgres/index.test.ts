import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "pg-connection-string";
import { homePaths } from "../../core/paths.js";
import type { Exec } from "../../lib/exec.js";
import { renderSupervisordConf } from "../supervisord/render.js";
import {
  createManagedPostgres,
  describeTarget,
  instanceDatabaseEnv,
  isUnreachable,
} from "./index.js";

const paths = homePaths("/var/lib/acc");
const noExec: Exec = () => Promise.reject(new Error("no process in this test"));

function managed() {
  return createManagedPostgres({
    paths,
    exec: noExec,
    port: 5433,
    bin: "/usr/lib/postgresql/15/bin",
    postgresUser: { name: "acc_postgres", uid: 999, gid: 999 },
  });
}

test("the managed cluster's command and supervisord program", () => {
  const pg = managed();
  assert.deepEqual(pg.command(), [
    "/usr/lib/postgresql/15/bin/postgres",
    "-D",
    "/var/lib/acc/postgres/data",
  ]);
  const conf = renderSupervisordConf({
    paths,
    programs: [pg.serviceProgram("/var/lib/acc/supervisor/logs/acc-postgres.log")],
  });
  const section = conf.slice(conf.indexOf("[program:acc-postgres]")).split("\n\n")[0] ?? "";
  assert.match(
    section,
    /^command=\/usr\/lib\/postgresql\/15\/bin\/postgres -D \/var\/lib\/acc\/postgres\/data$/m,
  );
  assert.match(section, /^user=acc_postgres$/m);
  assert.match(section, /^stopsignal=INT$/m);
  assert.match(section, /^directory=\/var\/lib\/acc\/postgres$/m);
});

test("the admin URL reads back as the admin connection (pg's parser)", () => {
  const pg = managed();
  const parsed = parse(pg.adminUrl("t_1"));
  assert.equal(parsed.host, "/var/lib/acc/postgres/run");
  assert.equal(parsed.port, "5433");
  assert.equal(parsed.user, "acc");
  assert.equal(parsed.database, "t_1");
  assert.deepEqual(pg.adminConnection(), {
    host: "/var/lib/acc/postgres/run",
    port: 5433,
    user: "acc",
    database: "postgres",
  });
  assert.equal(describeTarget(pg.adminUrl()), "/var/lib/acc/postgres/run/.s.PGSQL.5433");
  assert.equal(describeTarget("postgresql://u:secret@db.example.com/x"), "db.example.com:5432");
});

test("instance environment and unreachable errors", () => {
  assert.deepEqual(
    instanceDatabaseEnv({
      role: "i_a",
      database: "i_a",
      password: "p",
      host: "127.0.0.1",
      port: 5433,
      url: "postgresql://i_a:p@127.0.0.1:5433/i_a",
    }),
    {
      DATABASE_URL: "postgresql://i_a:p@127.0.0.1:5433/i_a",
      PGHOST: "127.0.0.1",
      PGPORT: "5433",
      PGUSER: "i_a",
      PGPASSWORD: "p",
      PGDATABASE: "i_a",
    },
  );
  const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  assert.equal(isUnreachable(refused), true);
  assert.equal(isUnreachable(Object.assign(new Error("starting up"), { code: "57P03" })), true);
  assert.equal(isUnreachable(Object.assign(new Error("syntax"), { code: "42601" })), false);
});
