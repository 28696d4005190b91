import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { commandArgv, encodeWord, renderLaunchSpec, sandboxArgs } from "./sandbox.js";

const host = {
  links: [{ path: "/bin", target: "usr/bin" }],
  dirs: ["/lib64"],
  extraReadOnly: ["/run/systemd/resolve"],
};

describe("sandboxArgs", () => {
  const args = sandboxArgs({
    bwrap: "/usr/bin/bwrap",
    host,
    instanceRoot: "/var/lib/acc/instances/foo",
    dataDir: "/var/lib/acc/instances/foo/data",
    codeDir: "/var/lib/acc/code/hello-1.0.0-abc",
    readOnly: ["/srv/fonts"],
    readWrite: ["/srv/shared"],
  });
  /** The value that follows a flag and a path, e.g. ["--bind", X, Y]. */
  const binds = (flag: string): string[] =>
    args.flatMap((arg, i) => (arg === flag ? [`${args[i + 1]}>${args[i + 2]}`] : []));

  it("unshares every namespace but the network, and ends with --", () => {
    for (const flag of [
      "--unshare-user",
      "--disable-userns",
      "--unshare-pid",
      "--unshare-ipc",
      "--unshare-uts",
      "--new-session",
      "--die-with-parent",
    ]) {
      assert.ok(args.includes(flag), flag);
    }
    assert.ok(!args.includes("--unshare-net"), "instances reach Postgres and the internet");
    assert.equal(args[0], "/usr/bin/bwrap");
    assert.equal(args.at(-1), "--");
  });

  it("writes only to data/ and the model's read-write paths", () => {
    assert.deepEqual(binds("--bind"), [
      "/var/lib/acc/instances/foo/data>/var/lib/acc/instances/foo/data",
      "/srv/shared>/srv/shared",
    ]);
    assert.deepEqual(binds("--ro-bind"), [
      "/usr>/usr",
      "/lib64>/lib64",
      "/etc>/etc",
      "/var/lib/acc/code/hello-1.0.0-abc>/var/lib/acc/code/hello-1.0.0-abc",
      "/var/lib/acc/instances/foo>/var/lib/acc/instances/foo",
      "/srv/fonts>/srv/fonts",
    ]);
    // data/ is bound after its read-only parent, or the parent's mount would hide it.
    assert.ok(
      args.indexOf("/var/lib/acc/instances/foo/data") > args.indexOf("/var/lib/acc/instances/foo"),
    );
    assert.ok(!args.some((arg) => arg === "/var/lib/acc" || arg === "/var/lib/acc/instances"));
  });

  it("reproduces the host's layout and gives a private /tmp and /proc", () => {
    assert.deepEqual(binds("--symlink"), ["usr/bin>/bin"]);
    assert.deepEqual(binds("--ro-bind-try"), ["/run/systemd/resolve>/run/systemd/resolve"]);
    for (const [flag, dir] of [
      ["--tmpfs", "/tmp"],
      ["--proc", "/proc"],
      ["--dev", "/dev"],
    ]) {
      assert.equal(args[args.indexOf(dir as string) - 1], flag, dir);
    }
  });
});

describe("commandArgv", () => {
  it("runs a plain command without a shell", () => {
    assert.deepEqual(commandArgv("node server.js --port=8080"), {
      argv: ["node", "server.js", "--port=8080"],
      direct: true,
    });
    assert.deepEqual(commandArgv("  ./bin/app  -v "), { argv: ["./bin/app", "-v"], direct: true });
  });
  it("leaves anything the shell would interpret to /bin/sh -c, as written", () => {
    for (const command of [
      "a && b",
      "a; b; exit 3",
      "node $APP",
      'echo "x y"',
      "FOO=1 node app.js",
      "cat < in",
      "node app.js # comment",
      "ls *.js",
      "~/bin/app",
    ]) {
      assert.deepEqual(commandArgv(command), { argv: ["/bin/sh", "-c", command], direct: false });
    }
  });
});

describe("renderLaunchSpec", () => {
  it("writes one percent-encoded line per setting", () => {
    const text = renderLaunchSpec({
      arch: "x64",
      uid: 100001,
      gid: 100002,
      envFile: "/h/instances/foo/env",
      chdir: "/h/code/x",
      port: { port: 20001, mode: "activate" },
      keeper: "/h/run/ports.sock",
      listenPid: 2,
      sandbox: ["/usr/bin/bwrap", "--"],
      run: ["node", "server.js"],
      setup: ["/bin/sh", "-c", "node setup.js && echo 100% done"],
    });
    assert.deepEqual(text.split("\n").slice(1), [
      "arch x64",
      "uid 100001",
      "gid 100002",
      "env /h/instances/foo/env",
      "chdir /h/code/x",
      "port 20001 activate",
      "keeper /h/run/ports.sock",
      "listen_pid 2",
      "sandbox /usr/bin/bwrap --",
      "run node server.js",
      "setup /bin/sh -c node%20setup.js%20&&%20echo%20100%25%20done",
      "",
    ]);
  });
  it("refuses a spec that would run as root", () => {
    assert.throws(
      () =>
        renderLaunchSpec({ arch: "x64", uid: 0, gid: 0, envFile: "/e", chdir: "/", run: ["x"] }),
      /without uid or gid/,
    );
  });
});

describe("encodeWord", () => {
  it("encodes what would end a word or a line, and nothing else", () => {
    assert.equal(encodeWord("a b\nc\td%e\0"), "a%20b%0Ac%09d%25e%00");
    assert.equal(encodeWord("café-ü/x"), "café-ü/x");
    assert.equal(encodeWord(""), "");
  });
});
