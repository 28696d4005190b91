import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { homePaths } from "../../core/paths.js";
import {
  programName,
  renderCommand,
  renderEnvironment,
  renderProgram,
  renderSupervisordConf,
  type InstanceProgram,
} from "./render.js";

const spec: InstanceProgram = {
  name: "foo",
  command: ["/home/acc/instances/foo/run.sh", "--port", "8001"],
  directory: "/home/acc/instances/foo",
  logFile: "/home/acc/instances/foo/logs/app.log",
  stopTimeoutSec: 10,
};

describe("renderProgram", () => {
  it("renders an instance program that only acc starts", () => {
    assert.equal(
      renderProgram({ ...spec, user: "acc-foo" }),
      [
        "[program:i-foo]",
        "command=/home/acc/instances/foo/run.sh --port 8001",
        "directory=/home/acc/instances/foo",
        "user=acc-foo",
        "autostart=false",
        "autorestart=false",
        "startsecs=0",
        "startretries=0",
        "stopasgroup=true",
        "killasgroup=true",
        "stopsignal=KILL",
        "stopwaitsecs=10",
        "stdout_logfile=/home/acc/instances/foo/logs/app.log",
        "stdout_logfile_maxbytes=10MB",
        "stdout_logfile_backups=3",
        "redirect_stderr=true",
        "",
      ].join("\n"),
    );
  });

  it("leaves user out when none is given", () => {
    assert.doesNotMatch(renderProgram(spec), /^user=/m);
  });

  it("refuses what would break the file or the names", () => {
    assert.throws(
      () => renderProgram({ ...spec, name: "Foo]\n[program:x" }),
      /invalid instance name/,
    );
    assert.throws(() => renderProgram({ ...spec, name: "a:b" }), /invalid instance name/);
    assert.throws(() => renderProgram({ ...spec, directory: "/a\nb" }), /newline or NUL/);
    assert.throws(() => renderProgram({ ...spec, logFile: "/a\rb" }), /newline or NUL/);
    assert.throws(() => renderProgram({ ...spec, logFile: "/a\0b" }), /newline or NUL/);
    assert.throws(() => renderProgram({ ...spec, command: ["x", "a\nb"] }), /newline or NUL/);
    assert.throws(() => renderProgram({ ...spec, command: [] }), /needs a command/);
    assert.throws(() => renderProgram({ ...spec, logFile: "AUTO" }), /absolute path/);
    assert.throws(() => renderProgram({ ...spec, logFile: "/logs/50%.log" }), /cannot contain %/);
    assert.throws(() => renderProgram({ ...spec, directory: "/a ;b" }), /start a comment/);
    assert.throws(() => renderProgram({ ...spec, directory: "/a " }), /end with a space/);
    assert.throws(() => renderProgram({ ...spec, user: "root\nx" }), /invalid user/);
    assert.throws(() => renderProgram({ ...spec, stopTimeoutSec: 0 }), /positive integer/);
    assert.throws(() => renderProgram({ ...spec, stopTimeoutSec: 1.5 }), /positive integer/);
  });
});

describe("programName", () => {
  it("prefixes instance names with i-", () => {
    assert.equal(programName("foo-1"), "i-foo-1");
    assert.throws(() => programName("../x"), /invalid instance name/);
    assert.throws(() => programName(""), /invalid instance name/);
  });
});

describe("renderCommand", () => {
  // Each case is checked against supervisor's own parser in test/supervisord.test.ts.
  const cases: [string, string][] = [
    ["plain/word-1.2_x:y=z,@+", "plain/word-1.2_x:y=z,@+"],
    ["", "''"],
    ["a b", "'a b'"],
    ["it's", `'it'"'"'s'`],
    ['say "hi"', `'say "hi"'`],
    // configparser cuts a line at whitespace followed by ; or #, so they stay outside quotes.
    ["a ;b", "'a ';'b'"],
    ["x #y", "'x '#'y'"],
    // %% for supervisord's expansion, and '' so that "%(here)s" never appears in the file.
    ["100%", "'100%%'''"],
    ["%(here)s", "'%%''(here)s'"],
    ["$HOME `id` \\n *", "'$HOME `id` \\n *'"],
    ["日本", "'日本'"],
  ];
  for (const [word, rendered] of cases) {
    it(`quotes ${JSON.stringify(word)}`, () => {
      assert.equal(renderCommand(["/bin/x", word]), `/bin/x ${rendered}`);
    });
  }

  it("never leaves whitespace before ; or #, whatever the word", () => {
    const words = ["a\u00a0;b", "\x1c#", " ; # ", "; ;", "#"];
    // eslint-disable-next-line no-control-regex -- Python counts \x1c-\x1f as whitespace
    assert.doesNotMatch(renderCommand(words), /[\s\x1c-\x1f\x85][;#]/);
  });
});

describe("renderEnvironment", () => {
  it("quotes every value and doubles %", () => {
    assert.equal(
      renderEnvironment({ A: "x", B: "100%", C: "it's", D: 'say "hi" now', E: "a,b=c", F: "" }),
      `A="x",B="100%%",C="it's",D='say "hi" now',E="a,b=c",F=""`,
    );
  });

  it("refuses values the format cannot carry", () => {
    assert.throws(() => renderEnvironment({ "A-B": "x" }), /invalid environment variable name/);
    assert.throws(() => renderEnvironment({ A: `both ' and " here` }), /both kinds of quote/);
    assert.throws(() => renderEnvironment({ A: '"quoted"' }), /start or end with a quote/);
    assert.throws(() => renderEnvironment({ A: "x ;y" }), /start a comment/);
    assert.throws(() => renderEnvironment({ A: "%(here)s" }), /cannot contain %\(here\)s/);
    assert.throws(() => renderEnvironment({ A: "a\nb" }), /newline or NUL/);
  });
});

describe("renderSupervisordConf", () => {
  const paths = homePaths("/var/lib/acc");

  it("renders acc's own supervisord with its services and the active instances", () => {
    const conf = renderSupervisordConf({
      paths,
      programs: [
        {
          name: "acc-nginx",
          command: ["/usr/sbin/nginx", "-p", "/var/lib/acc/nginx", "-c", "nginx.conf"],
          directory: "/var/lib/acc/nginx",
          logFile: "/var/lib/acc/nginx/logs/nginx.out.log",
          stopSignal: "QUIT",
          stopTimeoutSec: 15,
          env: { LANG: "C.UTF-8" },
        },
        {
          name: "acc-server",
          command: ["/usr/bin/node", "/opt/acc/dist/bin/acc.js", "server"],
          user: "acc",
          logFile: "/var/lib/acc/server.log",
        },
      ],
    });
    assert.equal(
      conf,
      [
        "; Written by acc: changes here are overwritten.",
        "[unix_http_server]",
        "file=/var/lib/acc/run/supervisor.sock",
        "chmod=0700",
        "",
        "[supervisord]",
        "logfile=/var/lib/acc/supervisor/supervisord.log",
        "logfile_maxbytes=50MB",
        "logfile_backups=5",
        "loglevel=info",
        "pidfile=/var/lib/acc/run/supervisord.pid",
        "childlogdir=/var/lib/acc/supervisor/logs",
        "directory=/var/lib/acc/supervisor",
        "umask=077",
        "nodaemon=false",
        "minfds=64",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        "serverurl=unix:///var/lib/acc/run/supervisor.sock",
        "",
        "[program:acc-nginx]",
        "command=/usr/sbin/nginx -p /var/lib/acc/nginx -c nginx.conf",
        "directory=/var/lib/acc/nginx",
        'environment=LANG="C.UTF-8"',
        "autostart=true",
        "autorestart=true",
        "stopasgroup=true",
        "killasgroup=true",
        "stopsignal=QUIT",
        "stopwaitsecs=15",
        "stdout_logfile=/var/lib/acc/nginx/logs/nginx.out.log",
        "stdout_logfile_maxbytes=10MB",
        "stdout_logfile_backups=3",
        "redirect_stderr=true",
        "",
        "[program:acc-server]",
        "command=/usr/bin/node /opt/acc/dist/bin/acc.js server",
        "user=acc",
        "autostart=true",
        "autorestart=true",
        "stopasgroup=true",
        "killasgroup=true",
        "stopsignal=TERM",
        "stopwaitsecs=10",
        "stdout_logfile=/var/lib/acc/server.log",
        "stdout_logfile_maxbytes=10MB",
        "stdout_logfile_backups=3",
        "redirect_stderr=true",
        "",
        "[include]",
        "files = /var/lib/acc/supervisor/conf.d/*.conf",
        "",
      ].join("\n"),
    );
  });

  it("renders an event listener: its events, a buffer, and no log of its pipes", () => {
    const conf = renderSupervisordConf({
      paths,
      programs: [
        {
          name: "acc-exits",
          command: ["/usr/bin/node", "/opt/acc/dist/acc.mjs", "exit-listener"],
          logFile: "/var/lib/acc/supervisor/logs/acc-exits.log",
          events: ["PROCESS_STATE_EXITED"],
        },
      ],
    });
    const section = conf.slice(
      conf.indexOf("[eventlistener:acc-exits]"),
      conf.indexOf("[include]"),
    );
    assert.deepEqual(section.trim().split("\n"), [
      "[eventlistener:acc-exits]",
      "command=/usr/bin/node /opt/acc/dist/acc.mjs exit-listener",
      "events=PROCESS_STATE_EXITED",
      "buffer_size=1024",
      "autostart=true",
      "autorestart=true",
      "stopasgroup=true",
      "killasgroup=true",
      "stopsignal=TERM",
      "stopwaitsecs=10",
      "stdout_logfile=NONE",
      "stderr_logfile=NONE",
    ]);
    assert.throws(
      () =>
        renderSupervisordConf({
          paths,
          programs: [{ name: "x", command: ["/bin/true"], logFile: "/x.log", events: ["A,B"] }],
        }),
      /invalid event types/,
    );
  });

  it("refuses service names that clash with instances or break the file", () => {
    const service = { command: ["/bin/true"], logFile: "/var/log/x.log" };
    assert.throws(
      () => renderSupervisordConf({ paths, programs: [{ ...service, name: "i-foo" }] }),
      /invalid service program name/,
    );
    assert.throws(
      () => renderSupervisordConf({ paths, programs: [{ ...service, name: "a]" }] }),
      /invalid service program name/,
    );
    assert.throws(
      () =>
        renderSupervisordConf({
          paths,
          programs: [
            { ...service, name: "x" },
            { ...service, name: "x" },
          ],
        }),
      /given twice/,
    );
  });

  it("refuses a home whose paths the file cannot carry", () => {
    assert.throws(
      () => renderSupervisordConf({ paths: homePaths("/srv/a b"), programs: [] }),
      /cannot include/,
    );
    assert.throws(
      () => renderSupervisordConf({ paths: homePaths("/srv/a\nb"), programs: [] }),
      /newline/,
    );
    assert.throws(
      () => renderSupervisordConf({ paths: homePaths("/srv/[x]"), programs: [] }),
      /cannot include/,
    );
  });
});
