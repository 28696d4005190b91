import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AccError } from "../lib/errors.js";
import { findKeyLine, parseManifest } from "./model.js";

const MINIMAL = `name = "hello"
version = "1.0.0"
command = "node server.js"

[health]
path = "/healthz"
`;

/** Asserts that parsing fails with ACC_MODEL and a message matching `message`; returns the error. */
function rejects(text: string, message: RegExp): AccError {
  let caught: unknown;
  try {
    parseManifest(text, "model.toml");
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof AccError, `expected an AccError, got ${String(caught)}`);
  assert.equal(caught.code, "ACC_MODEL");
  assert.match(caught.message, message);
  return caught;
}

describe("parseManifest", () => {
  it("reads a full manifest, durations in ms and defaults filled", () => {
    const text = `name = "crm"
version = "2.1.0-rc.1"
description = "A CRM"
command = "node server.js --port $PORT"
idle_timeout = "15m"
start_timeout = "60s"
stop_timeout = "10s"
database = "postgres"

[env]
GREETING = "Hello"
ADMIN = "{{ params.admin_email }} at {{ url }} {{ database_url }}"

[health]
path = "/healthz?full=1"
timeout = "30s"

[setup]
command = "node setup.js"
timeout = "5m"

[upgrade]
command = "node migrate.js"

[[templates]]
source = "templates/app.ini"
target = "app.ini"
mode = "0640"

[[templates]]
source = "templates/nested/db.yml"
target = "conf/db.yml"

[params.admin_email]
type = "email"
required = true
description = "Who gets the admin mails"

[params.workers]
type = "int"
default = 4

[params.debug]
type = "bool"
default = false

[params.admin_password]
type = "password"

[params.api_key]
type = "string"
secret = true
default = "none"
`;
    assert.deepEqual(parseManifest(text, "model.toml"), {
      name: "crm",
      version: "2.1.0-rc.1",
      description: "A CRM",
      command: "node server.js --port $PORT",
      idle_timeout: 900_000,
      start_timeout: 60_000,
      stop_timeout: 10_000,
      database: "postgres",
      env: {
        GREETING: "Hello",
        ADMIN: "{{ params.admin_email }} at {{ url }} {{ database_url }}",
      },
      health: { path: "/healthz?full=1", timeout: 30_000 },
      setup: { command: "node setup.js", timeout: 300_000 },
      upgrade: { command: "node migrate.js" },
      templates: [
        { source: "templates/app.ini", target: "app.ini", mode: 0o640 },
        { source: "templates/nested/db.yml", target: "conf/db.yml" },
      ],
      params: {
        admin_email: {
          type: "email",
          required: true,
          secret: false,
          description: "Who gets the admin mails",
        },
        workers: { type: "int", required: false, secret: false, default: "4" },
        debug: { type: "bool", required: false, secret: false, default: "false" },
        admin_password: { type: "password", required: false, secret: true },
        api_key: { type: "string", required: false, secret: true, default: "none" },
      },
      socket_activation: false,
      sandbox: { read_only: [], read_write: [] },
      limits: {},
    });
  });

  it("reads a minimal manifest", () => {
    assert.deepEqual(parseManifest(MINIMAL, "model.toml"), {
      name: "hello",
      version: "1.0.0",
      command: "node server.js",
      env: {},
      health: { path: "/healthz" },
      templates: [],
      params: {},
      socket_activation: false,
      sandbox: { read_only: [], read_write: [] },
      limits: {},
    });
  });

  it("reads [health] statuses, other statuses that pass besides 2xx, and refuses bad ones", () => {
    const manifest = parseManifest(`${MINIMAL}statuses = [200, 302, 302]\n`, "model.toml");
    assert.deepEqual(manifest.health.statuses, [200, 302]);
    assert.equal(parseManifest(MINIMAL, "model.toml").health.statuses, undefined);
    rejects(`${MINIMAL}statuses = 302\n`, /^model\.toml:7: health\.statuses must be an array/);
    rejects(`${MINIMAL}statuses = [200, 99]\n`, /^model\.toml:7: invalid status "99" in health/);
    rejects(`${MINIMAL}statuses = ["302"]\n`, /^model\.toml:7: invalid status "302" in health/);
    rejects(`${MINIMAL}statuses = [2.5]\n`, /^model\.toml:7: invalid status "2\.5" in health/);
  });

  it('takes "never" for idle_timeout only', () => {
    const never = parseManifest(`idle_timeout = "never"\n${MINIMAL}`, "model.toml");
    assert.equal(never.idle_timeout, null);
    rejects(`start_timeout = "never"\n${MINIMAL}`, /^model\.toml:1: invalid start_timeout "never"/);
    rejects(`stop_timeout = "0s"\n${MINIMAL}`, /^model\.toml:1: invalid stop_timeout "0s"/);
    rejects(`${MINIMAL}timeout = "soon"\n`, /^model\.toml:7: invalid health\.timeout "soon"/);
    rejects(
      `idle_timeout = 60\n${MINIMAL}`,
      /^model\.toml:1: idle_timeout must be a string, not a number/,
    );
  });

  it("names the line of a TOML syntax error", () => {
    const error = rejects('name = "hello"\nversion = \n', /^model\.toml:2: invalid TOML: /);
    assert.ok(!error.message.includes("\n"), "one line");
    rejects('name = "a"\nname = "b"\n', /^model\.toml:2: invalid TOML: .*redefine/);
  });

  it("reads [limits]: memory, cpu and pids, none left out; a bad one names its line", () => {
    const manifest = parseManifest(
      `${MINIMAL}\n[limits]\nmemory = "256M"\ncpu = 0.5\npids = "none"\n`,
      "model.toml",
    );
    assert.deepEqual(manifest.limits, { memory: 256 * 1024 ** 2, cpu: 0.5 });
    assert.deepEqual(parseManifest(MINIMAL, "model.toml").limits, {});
    rejects(
      `${MINIMAL}\n[limits]\nmemory = "lots"\n`,
      /^model\.toml:9: invalid memory limit "lots" in model\.toml$/,
    );
    rejects(`${MINIMAL}\n[limits]\ndisk = "1G"\n`, /^model\.toml:9: unknown key "disk"/);
  });

  it("reads strict_bind, a boolean left out when not given", () => {
    assert.equal(parseManifest(`strict_bind = true\n${MINIMAL}`, "model.toml").strict_bind, true);
    assert.equal(parseManifest(`strict_bind = false\n${MINIMAL}`, "model.toml").strict_bind, false);
    assert.equal("strict_bind" in parseManifest(MINIMAL, "model.toml"), false);
    rejects(
      `strict_bind = "yes"\n${MINIMAL}`,
      /^model\.toml:1: strict_bind must be true or false, not a string$/,
    );
    const typo = rejects(
      `strict_bnd = true\n${MINIMAL}`,
      /^model\.toml:1: unknown key "strict_bnd"$/,
    );
    assert.match(typo.hint ?? "", /did you mean "strict_bind"\?/);
    const misplaced = rejects(
      `${MINIMAL}strict_bind = true\n`,
      /^model\.toml:7: unknown key "strict_bind" in health$/,
    );
    assert.match(misplaced.hint ?? "", /^top-level keys go above the first \[table\]/);
  });

  it("reads socket_activation and the sandbox's extra paths", () => {
    const manifest = parseManifest(
      `socket_activation = true\n${MINIMAL}\n[sandbox]\nread_only = ["/srv/fonts/"]\nread_write = ["/srv/shared"]\n`,
      "model.toml",
    );
    assert.equal(manifest.socket_activation, true);
    assert.deepEqual(manifest.sandbox, { read_only: ["/srv/fonts"], read_write: ["/srv/shared"] });
    rejects(
      `socket_activation = 1\n${MINIMAL}`,
      /^model\.toml:1: socket_activation must be true or false, not a number$/,
    );
    for (const bad of ["relative", "/srv/../etc", "/srv/a b", "/srv/$HOME"]) {
      rejects(
        `${MINIMAL}\n[sandbox]\nread_write = [${JSON.stringify(bad)}]\n`,
        /invalid sandbox\.read_write\[0\]/,
      );
    }
    for (const own of ["/", "/proc", "/proc/1", "/etc", "/usr/", "/tmp"]) {
      rejects(
        `${MINIMAL}\n[sandbox]\nread_only = [${JSON.stringify(own)}]\n`,
        /is not a path a model may bind/,
      );
    }
    rejects(`${MINIMAL}\n[sandbox]\nread_only = "/srv"\n`, /must be an array of paths/);
    rejects(`${MINIMAL}\n[sandbox]\nwrite = []\n`, /unknown key "write" in sandbox/);
  });

  it("rejects unknown keys with their line and a suggestion", () => {
    const top = rejects(
      MINIMAL.replace("command", "comand"),
      /^model\.toml:3: unknown key "comand"$/,
    );
    assert.match(top.hint ?? "", /did you mean "command"\?/);
    rejects(`${MINIMAL}tiemout = "1s"\n`, /^model\.toml:7: unknown key "tiemout" in health$/);
    const misplaced = rejects(
      `${MINIMAL}idle_timeout = "5m"\n`,
      /^model\.toml:7: unknown key "idle_timeout" in health$/,
    );
    assert.match(misplaced.hint ?? "", /^top-level keys go above the first \[table\]/);
    rejects(`${MINIMAL}\n[helth]\npath = "/"\n`, /^model\.toml:8: unknown key "helth"$/);
    rejects(
      `${MINIMAL}\n[[templates]]\nsource = "a"\ntarget = "b"\n\n[[templates]]\nsource = "c"\ntraget = "d"\n`,
      /^model\.toml:14: unknown key "traget" in templates\[1\]$/,
    );
    rejects(
      `${MINIMAL}\n[params.admin]\ntype = "string"\nrequird = true\n`,
      /^model\.toml:10: unknown key "requird" in params\.admin$/,
    );
    rejects(
      `${MINIMAL}\n[setup]\ncommand = "x"\ntimeuot = "1m"\n`,
      /^model\.toml:10: unknown key "timeuot" in setup$/,
    );
    rejects(
      `${MINIMAL}\n[upgrade]\ncommand = "x"\nretries = 3\n`,
      /^model\.toml:10: unknown key "retries" in upgrade$/,
    );
  });

  it("names missing required keys", () => {
    rejects(MINIMAL.replace('name = "hello"\n', ""), /^model\.toml: missing required key name$/);
    rejects(
      MINIMAL.replace('version = "1.0.0"\n', ""),
      /^model\.toml: missing required key version$/,
    );
    rejects(
      MINIMAL.replace('command = "node server.js"\n', ""),
      /^model\.toml: missing required key command$/,
    );
    rejects(
      MINIMAL.replace('path = "/healthz"\n', ""),
      /^model\.toml:5: missing required key health\.path$/,
    );
    rejects(
      MINIMAL.replace('[health]\npath = "/healthz"\n', ""),
      /^model\.toml: missing required table \[health\]$/,
    );
    rejects(
      `${MINIMAL}\n[setup]\ntimeout = "1m"\n`,
      /^model\.toml:8: missing required key setup\.command$/,
    );
    rejects(
      `${MINIMAL}\n[upgrade]\ntimeout = "1m"\n`,
      /^model\.toml:8: missing required key upgrade\.command$/,
    );
  });

  it("checks value types and names the key", () => {
    rejects(
      MINIMAL.replace('version = "1.0.0"', "version = 1"),
      /^model\.toml:2: version must be a string, not a number$/,
    );
    rejects(
      MINIMAL.replace('command = "node server.js"', 'command = ""'),
      /^model\.toml:3: command must not be empty$/,
    );
    rejects(
      MINIMAL.replace('command = "node server.js"', 'command = "node a.js\\nrm -rf /"'),
      /^model\.toml:3: command holds a control character/,
    );
    rejects(`${MINIMAL}\n[env]\nX = 1\n`, /^model\.toml:9: env\.X must be a string, not a number$/);
    rejects(
      `health = "/healthz"\n${MINIMAL.replace(/\[health\][^]*$/, "")}`,
      /^model\.toml:1: health must be a table, not a string$/,
    );
    rejects(
      `${MINIMAL}\n[params.x]\ntype = "string"\nrequired = "yes"\n`,
      /^model\.toml:10: params\.x\.required must be true or false/,
    );
  });

  it("checks name, version and database", () => {
    for (const bad of ["Hello", "he_llo", "-hello", "hello-", "a.b", "", "x".repeat(64)]) {
      rejects(
        MINIMAL.replace('"hello"', JSON.stringify(bad)),
        /^model\.toml:1: (invalid model name|name must not be empty)/,
      );
    }
    for (const bad of ["1 0", "..", ".hidden", "1.0/2", "v$1", "x".repeat(65)]) {
      rejects(MINIMAL.replace('"1.0.0"', JSON.stringify(bad)), /^model\.toml:2: invalid version/);
    }
    rejects(`database = "mysql"\n${MINIMAL}`, /^model\.toml:1: invalid database "mysql"$/);
  });

  it("checks the health path", () => {
    for (const bad of ["healthz", "/health z", "/a\tb", "", "http://x/"]) {
      const text = MINIMAL.replace('"/healthz"', JSON.stringify(bad));
      rejects(text, /^model\.toml:6: (invalid health\.path|health\.path holds)/);
    }
  });

  it("checks [env] names, reserved names, values and placeholders", () => {
    const env = (body: string): string => `${MINIMAL}\n[env]\n${body}\n`;
    assert.deepEqual(parseManifest(env('A_1 = "x {{ port }}"'), "m").env, { A_1: "x {{ port }}" });
    rejects(env('lower = "x"'), /^model\.toml:9: invalid environment variable name "lower"$/);
    rejects(env('"1A" = "x"'), /^model\.toml:9: invalid environment variable name "1A"$/);
    rejects(env('PORT = "80"'), /^model\.toml:9: env\.PORT is set by acc itself$/);
    rejects(env('ACC_INSTANCE = "x"'), /^model\.toml:9: env\.ACC_INSTANCE is set by acc itself$/);
    rejects(env('A = "x\\ny"'), /^model\.toml:9: env\.A holds a control character/);
    const unknown = rejects(
      env('A = "{{ prams.x }}"'),
      /^model\.toml:9: env\.A uses unknown placeholder \{\{ prams\.x \}\}$/,
    );
    assert.match(unknown.hint ?? "", /known: name, port, url, host, data_dir, config_dir$/);
    rejects(env('A = "{{ database_url }}"'), /unknown placeholder \{\{ database_url \}\}/);
  });

  it("checks template paths, duplicates and modes", () => {
    const tpl = (source: string, target = "app.ini", extra = ""): string =>
      `${MINIMAL}\n[[templates]]\nsource = ${JSON.stringify(source)}\ntarget = ${JSON.stringify(target)}\n${extra}`;
    for (const bad of ["../x", "/etc/passwd", "a/../../b", "./a", "a//b", "a\\b", "a/", ""]) {
      rejects(
        tpl(bad),
        /^model\.toml:9: (templates\[0\]\.source must be a relative path|missing|templates\[0\]\.source must not be empty)/,
      );
      rejects(
        tpl("a", bad),
        /^model\.toml:10: (templates\[0\]\.target must be a relative path|templates\[0\]\.target must not be empty)/,
      );
    }
    rejects(tpl("a", "x", 'mode = "rw"\n'), /^model\.toml:11: invalid templates\[0\]\.mode "rw"$/);
    rejects(
      tpl("a", "x", 'mode = "4755"\n'),
      /^model\.toml:11: invalid templates\[0\]\.mode "4755"$/,
    );
    rejects(
      tpl("a", "x", "mode = 0o600\n"),
      /^model\.toml:11: templates\[0\]\.mode must be a string/,
    );
    assert.equal(parseManifest(tpl("a", "x", 'mode = "644"\n'), "m").templates[0]?.mode, 0o644);
    rejects(
      `${tpl("a", "x")}\n[[templates]]\nsource = "b"\ntarget = "x"\n`,
      /^model\.toml:14: templates\[1\]\.target "x" is already the target of templates\[0\]$/,
    );
    rejects(`templates = "x"\n${MINIMAL}`, /^model\.toml:1: templates must be an array of tables/);
  });

  it("checks params: names, types, defaults", () => {
    const param = (name: string, body: string): string => `${MINIMAL}\n[params.${name}]\n${body}\n`;
    rejects(param("Admin", 'type = "string"'), /^model\.toml:8: invalid parameter name "Admin"$/);
    rejects(
      param('"admin-email"', 'type = "string"'),
      /^model\.toml:8: invalid parameter name "admin-email"$/,
    );
    rejects(param("_x", 'type = "string"'), /^model\.toml:8: invalid parameter name "_x"$/);
    rejects(param("x", "required = true"), /^model\.toml:8: missing required key params\.x\.type$/);
    rejects(
      param("x", 'type = "text"'),
      /^model\.toml:9: params\.x\.type must be one of string, int, bool, email, password, not "text"$/,
    );
    rejects(
      param("x", 'type = "email"\ndefault = "nobody"'),
      /^model\.toml:10: params\.x\.default "nobody" is not valid: expected an email address/,
    );
    rejects(
      param("x", 'type = "int"\ndefault = -1'),
      /^model\.toml:10: params\.x\.default "-1" is not valid/,
    );
    rejects(
      param("x", 'type = "int"\ndefault = 1.5'),
      /^model\.toml:10: params\.x\.default must be a whole number, not a number$/,
    );
    rejects(
      param("x", 'type = "bool"\ndefault = "yes"'),
      /^model\.toml:10: params\.x\.default "yes" is not valid/,
    );
    rejects(
      param("x", 'type = "string"\ndefault = true'),
      /^model\.toml:10: params\.x\.default must be a string, not a boolean$/,
    );
    rejects(
      param("x", 'type = "string"\ndefault = "a\\nb"'),
      /^model\.toml:10: params\.x\.default "a\\nb" is not valid: control/,
    );
    rejects(
      param("x", 'type = "password"\ndefault = "hunter2"'),
      /^model\.toml:10: params\.x\.default: a password parameter cannot have a default$/,
    );
    const publicPassword = parseManifest(param("x", 'type = "password"\nsecret = false'), "m");
    assert.equal(publicPassword.params.x?.secret, false);
    assert.equal(
      parseManifest(param("x", 'type = "int"\ndefault = "08"'), "m").params.x?.default,
      "08",
    );
    // Params declared with dotted keys or inline tables are the same TOML.
    const dotted = parseManifest(
      `${MINIMAL}\n[params]\nx.type = "bool"\ny = { type = "int", default = 3 }\n`,
      "m",
    );
    assert.deepEqual(Object.keys(dotted.params), ["x", "y"]);
    rejects(
      `${MINIMAL}\n[params]\nx.tpye = "bool"\n`,
      /^model\.toml:9: unknown key "tpye" in params\.x$/,
    );
  });

  it("does not mistake the inside of a multi-line string for a key", () => {
    const text = `name = "hello"
version = "1.0.0"
description = """
command = "not this one"
"""
command = "node server.js"
[health]
path = "nope"
`;
    rejects(text, /^model\.toml:3: description holds a control character/);
    assert.equal(findKeyLine(text, ["command"]), 6);
    assert.equal(findKeyLine(text, ["health", "path"]), 8);
    assert.equal(findKeyLine(text, ["health", "timeout"]), 7);
    assert.equal(findKeyLine(text, ["nothing"]), undefined);
  });
});
