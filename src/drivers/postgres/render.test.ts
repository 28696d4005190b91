import assert from "node:assert/strict";
import { test } from "node:test";
import {
  clusterLayout,
  instanceDatabaseName,
  instanceOfDatabase,
  quoteIdent,
  quoteLiteral,
  renderPgHba,
  renderPgIdent,
  renderPostgresConf,
  scramVerifier,
} from "./render.js";

test("postgresql.conf: loopback, own socket folder, scram, stderr logs, local overrides", () => {
  const layout = clusterLayout("/var/lib/acc/postgres");
  assert.deepEqual(layout, {
    root: "/var/lib/acc/postgres",
    data: "/var/lib/acc/postgres/data",
    socket: "/var/lib/acc/postgres/run",
  });
  const conf = renderPostgresConf({ port: 5433, socketDir: layout.socket });
  for (const line of [
    "listen_addresses = '127.0.0.1'",
    "port = 5433",
    "unix_socket_directories = '/var/lib/acc/postgres/run'",
    "password_encryption = 'scram-sha-256'",
    "shared_buffers = '32MB'",
    "log_destination = 'stderr'",
    "logging_collector = off",
  ]) {
    assert.ok(conf.split("\n").includes(line), line);
  }
  // The sysadmin's file comes last, so its settings win.
  assert.equal(conf.trimEnd().split("\n").at(-1), "include_if_exists = 'local.conf'");
  assert.throws(() => renderPostgresConf({ port: 0, socketDir: "/x" }), /invalid port/);
  assert.match(
    renderPostgresConf({ port: 1, socketDir: "/a'b" }),
    /unix_socket_directories = '\/a''b'/,
  );
});

test("pg_hba and pg_ident: admin by peer map over the socket, instances by password on loopback", () => {
  const options = { superuser: "acc", adminOsUsers: ["root", "acc", "root"] };
  assert.equal(
    renderPgHba(options),
    [
      "# Written by acc: changes here are overwritten.",
      "# TYPE  DATABASE  USER  ADDRESS       METHOD",
      "local   all       all                 peer map=acc",
      "host    samerole  all   127.0.0.1/32  scram-sha-256",
      "host    samerole  all   ::1/128       scram-sha-256",
      "",
    ].join("\n"),
  );
  assert.equal(
    renderPgIdent(options),
    [
      "# Written by acc: changes here are overwritten.",
      "# MAP  OS-USER  ROLE",
      "acc  root  acc",
      "acc  acc  acc",
      "",
    ].join("\n"),
  );
  assert.throws(() => renderPgIdent({ superuser: "acc", adminOsUsers: ["a b"] }), /invalid/);
});

test("instance database names: i_ + the DNS label, '-' kept; anything else is a bug", () => {
  assert.equal(instanceDatabaseName("my-app"), "i_my-app");
  assert.equal(instanceOfDatabase("i_my-app"), "my-app");
  assert.equal(instanceOfDatabase("postgres"), undefined);
  assert.equal(instanceOfDatabase("i_Bad"), undefined);
  for (const bad of ["", "-a", "a-", "A", 'a"b', "a;drop", "x".repeat(64)]) {
    assert.throws(() => instanceDatabaseName(bad), /invalid instance name/, bad);
  }
});

test("quoting: identifiers always quoted, literals safe with quotes and backslashes", () => {
  assert.equal(quoteIdent("i_my-app"), '"i_my-app"');
  assert.equal(quoteIdent('a"b'), '"a""b"');
  assert.throws(() => quoteIdent(""));
  assert.equal(quoteLiteral("it's"), "'it''s'");
  assert.equal(quoteLiteral("a\\b'c"), "E'a\\\\b''c'");
  assert.throws(() => quoteLiteral("a\0b"));
});

test("scramVerifier: RFC 7677's construction (logging in with it is checked in test/postgres.test.ts)", () => {
  const salt = Buffer.from("0123456789abcdef", "utf8");
  // Computed independently with Python's hashlib.pbkdf2_hmac and hmac.
  assert.equal(
    scramVerifier("pencil", salt),
    "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$nQpbZ77WudtqufPwikHXGRt6g2QJ4zns8bZLw273DRM=:jn2amWP1q1h+jgjy0YTO14S6/F02SV7taipOeB7ef20=",
  );
  assert.throws(() => scramVerifier("pässword", salt), /ASCII/);
});
