import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { appendFile, cp, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import https from "node:https";
import path from "node:path";
import { test } from "node:test";
import { homePaths } from "../src/core/paths.js";
import {
  createAccHome,
  tlsHomeEnv,
  httpRequest,
  logDiagnostics,
  type AccHome,
  type HttpAnswer,
} from "./harness/acc.js";
import { createTestCa } from "./harness/certs.js";
import { freePort, makeTempDir, removeDir } from "./harness/common.js";

const here = import.meta.dirname;
const ECHO_MODEL = path.resolve(here, "../../test/fixtures/models/echo");
const DOMAIN = "tls.test";

/** GET over HTTPS through acc's nginx, the chain and the name checked against the test CA. */
function httpsGet(
  port: number,
  servername: string,
  ca: string,
  options: { path?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  return httpRequest(port, `${servername}:${port}`, {
    ...options,
    timeoutMs: options.timeoutMs ?? 60_000,
    tls: { ca },
  });
}

/** Every file under HOME/tls and HOME/nginx/tls, hashed: a refused import changes none. */
async function tlsFiles(home: string): Promise<string> {
  const paths = homePaths(home);
  const hash = createHash("sha256");
  for (const dir of [paths.tls, paths.tlsInstances, paths.nginxTls]) {
    for (const file of (await readdir(dir)).sort()) {
      hash.update(file);
      if ((await stat(path.join(dir, file))).isFile())
        hash.update(await readFile(path.join(dir, file)));
    }
  }
  hash.update(await readFile(paths.nginxConf));
  return hash.digest("hex");
}

function echo(answer: HttpAnswer): Record<string, unknown> {
  assert.equal(answer.status, 200, answer.body);
  return JSON.parse(answer.body) as Record<string, unknown>;
}

test(
  "tls manual: import for an instance and the wildcard, HTTPS by SNI with the right chain, waking, forwarded headers, redirect, refusals, destroy",
  { timeout: 300_000 },
  async (t) => {
    const httpsPort = await freePort();
    const acc: AccHome = await createAccHome({
      env: tlsHomeEnv({ domain: DOMAIN, httpsPort, tls: "manual", redirect: true }),
    });
    t.after(async () => {
      // nginx's own words, when a handshake or a reload failed.
      await logDiagnostics(t, acc.home);
      await acc.cleanup();
    });
    const certDir = await makeTempDir("acc-tls-certs-");
    t.after(() => removeDir(certDir));
    const ca = await createTestCa(certDir);
    await cp(ECHO_MODEL, path.join(acc.home, "models/echo"), { recursive: true });
    // A secret parameter: the env file, written again when the URL turns https, must keep it.
    await appendFile(
      path.join(acc.home, "models/echo/model.toml"),
      '\n[params.token]\ntype = "password"\n',
    );
    await acc.ok(["boot"]);
    await acc.ok([
      "create",
      "echo",
      "--name",
      "ta1",
      "--host",
      "shop.tls-other.test",
      "--no-start",
    ]);
    await acc.ok(["create", "echo", "--name", "tb1", "--no-start"]);
    const paths = homePaths(acc.home);

    // Before any certificate: HTTP is served, not redirected; HTTPS refuses the handshake.
    assert.equal((await acc.request("ta1.tls.test", { timeoutMs: 60_000 })).status, 200);
    await assert.rejects(
      httpsGet(httpsPort, "ta1.tls.test", ca.rootPem),
      /alert|handshake|ECONNRESET|socket/i,
    );

    // Refusals: exit 2, one line naming what is wrong and the file, nothing changed.
    const good = await ca.issue("ta1", ["ta1.tls.test", "shop.tls-other.test"]);
    const other = await ca.issue("other", ["ta1.tls.test", "shop.tls-other.test"]);
    const expired = await ca.issue("old", ["ta1.tls.test", "shop.tls-other.test"], {
      expired: true,
    });
    const partial = await ca.issue("partial", ["ta1.tls.test"]);
    await symlink(good.cert, path.join(certDir, "link.crt"));
    await writeFile(path.join(certDir, "garbage.crt"), "not a certificate\n");
    const before = await tlsFiles(acc.home);
    const refusals: [string[], RegExp][] = [
      [
        ["--cert", good.cert, "--key", other.key],
        /the key in ".*other\.key" does not match the certificate in ".*ta1\.crt"/,
      ],
      [
        ["--cert", expired.cert, "--key", expired.key],
        /the certificate in ".*old\.crt" expired on /,
      ],
      [
        ["--cert", partial.cert, "--key", partial.key],
        /".*partial\.crt" does not cover shop\.tls-other\.test/,
      ],
      [
        ["--cert", path.join(certDir, "link.crt"), "--key", good.key],
        /".*link\.crt" is a symbolic link/,
      ],
      [
        ["--cert", path.join(certDir, "garbage.crt"), "--key", good.key],
        /".*garbage\.crt" holds no PEM certificate/,
      ],
      [["--cert", certDir, "--key", good.key], /is not a regular file/],
      [
        ["--cert", good.chainReversed, "--key", good.key],
        /certificate 1 in ".*ta1\.rev" is not signed by certificate 2/,
      ],
    ];
    for (const [args, message] of refusals) {
      const result = await acc.run(["tls", "import", ...args, "--for", "ta1"]);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    }
    const noName = await acc.run(["tls", "import", "--cert", good.cert, "--key", good.key]);
    assert.equal(noName.code, 2, noName.stderr);
    assert.equal(await tlsFiles(acc.home), before);

    // A good one: stored root's (readable by nginx's workers: test/tls-files), served by SNI,
    // the URL becomes https.
    const envFile = path.join(acc.home, "instances/ta1/env");
    const secret = /^PARAM_TOKEN='([^']+)'$/m.exec(await readFile(envFile, "utf8"))?.[1];
    assert.equal(secret?.length, 24, "a generated secret");
    const imported = await acc.run([
      "tls",
      "import",
      "--cert",
      good.cert,
      "--key",
      good.key,
      "--for",
      "ta1",
    ]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(
      imported.stdout,
      /certificate for ta1: ta1\.tls\.test, shop\.tls-other\.test, valid until/,
    );
    assert.match(imported.stdout, /URL now https for ta1/);
    const key = await stat(path.join(paths.tlsInstances, "ta1.key"));
    const isRoot = process.getuid?.() === 0;
    assert.equal(key.mode & 0o777, isRoot ? 0o640 : 0o600);
    assert.equal(key.uid, process.getuid?.());
    assert.equal((await stat(paths.tls)).mode & 0o777, isRoot ? 0o750 : 0o700);
    // Its first host (the --host given at create) is its URL's.
    const url = `https://shop.tls-other.test:${httpsPort}/`;
    const shown = JSON.parse(await acc.ok(["show", "ta1", "--json"])) as { url: string };
    assert.equal(shown.url, url);
    const env = await readFile(envFile, "utf8");
    assert.match(env, new RegExp(`ACC_URL='${url}'`));
    assert.match(env, new RegExp(`^PARAM_TOKEN='${secret}'$`, "m"), "its secret is kept");

    // ACC_URL is read at a start: the HTTP request above started ta1 with the old one.
    await acc.ok(["stop", "ta1"]);
    // Waking a stopped instance over HTTPS; the app sees https and the client's address, not
    // what the client claimed.
    const woken = echo(
      await httpsGet(httpsPort, "ta1.tls.test", ca.rootPem, {
        path: "/hello",
        headers: { "x-forwarded-proto": "http", "x-forwarded-for": "6.6.6.6" },
      }),
    );
    assert.equal(woken.instance, "ta1");
    assert.equal(woken.forwarded_proto, "https");
    assert.equal(woken.forwarded_for, "127.0.0.1");
    assert.equal(woken.acc_url, url);
    const running = echo(
      await httpsGet(httpsPort, "shop.tls-other.test", ca.rootPem, {
        headers: { "x-forwarded-for": "6.6.6.6, 7.7.7.7" },
      }),
    );
    assert.equal(running.instance, "ta1");
    assert.equal(running.forwarded_proto, "https");
    assert.equal(running.forwarded_for, "127.0.0.1");
    const plain = JSON.parse(
      (await acc.request("tb1.tls.test", { timeoutMs: 60_000 })).body,
    ) as Record<string, unknown>;
    assert.equal(plain.forwarded_proto, "http");

    // http_redirect: a host served over HTTPS gets a 301, but never on the ACME challenge
    // path; a host without a certificate stays on HTTP.
    const redirected = await acc.request("ta1.tls.test", { path: "/a?b=1" });
    assert.equal(redirected.status, 301);
    assert.equal(redirected.headers.location, `https://ta1.tls.test:${httpsPort}/a?b=1`);
    const challenge = await acc.request("ta1.tls.test", {
      path: "/.well-known/acme-challenge/tok",
    });
    assert.equal(challenge.status, 200, challenge.body);
    assert.equal(
      (JSON.parse(challenge.body) as { url: string }).url,
      "/.well-known/acme-challenge/tok",
    );
    assert.equal((await acc.request("tb1.tls.test")).status, 200);

    // tb1 has no certificate of its own: no handshake until the wildcard comes.
    await assert.rejects(
      httpsGet(httpsPort, "tb1.tls.test", ca.rootPem),
      /alert|handshake|ECONNRESET|socket/i,
    );
    const wild = await ca.issue("wild", ["*.tls.test"]);
    const narrow = await ca.issue("narrow", ["*.sub.tls.test"]);
    const refused = await acc.run([
      "tls",
      "import",
      "--cert",
      narrow.cert,
      "--key",
      narrow.key,
      "--wildcard",
    ]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /does not cover \*\.tls\.test/);
    const wildcard = await acc.run([
      "tls",
      "import",
      "--cert",
      wild.cert,
      "--key",
      wild.key,
      "--wildcard",
    ]);
    assert.equal(wildcard.code, 0, wildcard.stderr);
    assert.match(wildcard.stdout, /URL now https for tb1 /);
    const viaWildcard = echo(await httpsGet(httpsPort, "tb1.tls.test", ca.rootPem));
    assert.equal(viaWildcard.instance, "tb1");
    assert.equal(viaWildcard.forwarded_proto, "https");
    // ta1 keeps its own certificate (an exact name wins over the wildcard).
    const own = await new Promise<string>((resolve, reject) => {
      const req = https.get(
        {
          host: "127.0.0.1",
          port: httpsPort,
          servername: "ta1.tls.test",
          ca: ca.rootPem,
          headers: { host: "ta1.tls.test" },
          agent: false,
        },
        (res) => {
          const cert = (res.socket as import("node:tls").TLSSocket).getPeerCertificate();
          res.resume();
          resolve(cert.subjectaltname ?? "");
        },
      );
      req.on("error", reject);
    });
    assert.equal(own, "DNS:ta1.tls.test, DNS:shop.tls-other.test");

    const list = JSON.parse(await acc.ok(["tls", "list", "--json"])) as {
      for: string;
      hosts: string[];
    }[];
    assert.deepEqual(
      list.map((c) => [c.for, c.hosts]),
      [
        ["ta1", ["ta1.tls.test", "shop.tls-other.test"]],
        ["*", ["*.tls.test"]],
      ],
    );

    // A host added later that the certificate does not cover: served over HTTP only.
    await acc.ok(["host", "add", "ta1", "extra.tls-other.test"]);
    const entries = await readFile(path.join(paths.nginxTls, "ta1.conf"), "utf8");
    assert.deepEqual(
      entries
        .split("\n")
        .filter(Boolean)
        .map((line) => line.split(" "))
        .sort(),
      [
        ["shop.tls-other.test", `${paths.tlsInstances}/ta1;`],
        ["ta1.tls.test", `${paths.tlsInstances}/ta1;`],
      ],
    );
    assert.equal((await acc.request("extra.tls-other.test")).status, 200);
    await assert.rejects(
      httpsGet(httpsPort, "extra.tls-other.test", ca.rootPem),
      /alert|handshake|ECONNRESET|socket/i,
    );
    assert.equal(echo(await httpsGet(httpsPort, "ta1.tls.test", ca.rootPem)).instance, "ta1");

    // Destroy removes its certificate and key; the final backup holds no key.
    await acc.ok(["destroy", "ta1", "--yes"]);
    for (const file of [
      "tls/instances/ta1.crt",
      "tls/instances/ta1.key",
      "nginx/tls/ta1.conf",
      "nginx/tls/ta1.map",
    ]) {
      await assert.rejects(stat(path.join(acc.home, file)), /ENOENT/, file);
    }
    const backups = await readdir(paths.backups, { recursive: true });
    assert.ok(backups.length > 0);
    for (const file of backups) {
      const full = path.join(paths.backups, file);
      if (!(await stat(full)).isFile()) continue;
      assert.doesNotMatch(await readFile(full, "latin1"), /PRIVATE KEY/, file);
    }
  },
);
