// The certificate files nginx's workers load at each handshake (README "TLS"): readable by the
// workers' user, by no instance; and acc boot moving a home of the layout before (each key
// inline in HOME/nginx/tls/NAME.pem) to this one.
import assert from "node:assert/strict";
import { chmod, chown, cp, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { homePaths } from "../src/core/paths.js";
import { createAccHome, tlsHomeEnv, httpRequest, type AccHome } from "./harness/acc.js";
import {
  instanceIdentity,
  listAs,
  nginxWorkerIdentity,
  readAs,
  requireRoot,
} from "./harness/attacker.js";
import { createTestCa } from "./harness/certs.js";
import { freePort, makeTempDir, removeDir } from "./harness/common.js";

const skip = requireRoot();
const here = import.meta.dirname;
const ECHO_MODEL = path.resolve(here, "../../test/fixtures/models/echo");
const DOMAIN = "lyfiles.test";

/** The instance that answers over HTTPS for `host`, its certificate checked against the CA. */
async function httpsInstance(port: number, host: string, ca: string): Promise<string> {
  const answer = await httpRequest(port, `${host}:${port}`, { timeoutMs: 60_000, tls: { ca } });
  assert.equal(answer.status, 200, answer.body);
  return (JSON.parse(answer.body) as { instance: string }).instance;
}

test(
  "tls files: keys readable by nginx's workers and not by instances; acc boot moves the inline layout to files",
  { skip, timeout: 300_000 },
  async (t) => {
    const httpsPort = await freePort();
    const acc: AccHome = await createAccHome({
      env: tlsHomeEnv({ domain: DOMAIN, httpsPort, tls: "manual" }),
    });
    t.after(() => acc.cleanup());
    const certDir = await makeTempDir("acc-tls-files-");
    t.after(() => removeDir(certDir));
    const ca = await createTestCa(certDir);
    await cp(ECHO_MODEL, path.join(acc.home, "models/echo"), { recursive: true });
    await acc.ok(["boot"]);
    await acc.ok(["create", "echo", "--name", "lyk1", "--no-start"]);
    await acc.ok(["create", "echo", "--name", "lyw1", "--no-start"]);
    const own = await ca.issue("lyk1", [`lyk1.${DOMAIN}`]);
    const wild = await ca.issue("wild", [`*.${DOMAIN}`]);
    await acc.ok(["tls", "import", "--cert", own.cert, "--key", own.key, "--for", "lyk1"]);
    await acc.ok(["tls", "import", "--cert", wild.cert, "--key", wild.key, "--wildcard"]);
    const paths = homePaths(acc.home);
    const key = path.join(paths.tlsInstances, "lyk1.key");
    const keys = [key, paths.tlsWildcardKey];
    const worker = await nginxWorkerIdentity(acc);
    assert.notEqual(worker.uid, 0);

    /** Modes and owners as acc sets them, and who can read what. */
    const checkAccess = async (): Promise<void> => {
      for (const dir of [paths.tls, paths.tlsInstances]) {
        const info = await stat(dir);
        assert.equal(info.mode & 0o7777, 0o750, dir);
        assert.deepEqual([info.uid, info.gid], [0, worker.gid], dir);
      }
      for (const file of [...keys, path.join(paths.tlsInstances, "lyk1.crt")]) {
        const info = await stat(file);
        assert.equal(info.mode & 0o7777, 0o640, file);
        assert.deepEqual([info.uid, info.gid], [0, worker.gid], file);
      }
      for (const name of ["lyk1", "lyw1"]) {
        const instance = await instanceIdentity(name);
        for (const file of keys) {
          const read = await readAs(instance, file);
          assert.equal(read.ok, false, `${instance.user} read ${file}`);
          assert.equal(read.code, "EACCES", file);
        }
        assert.equal((await listAs(instance, paths.tlsInstances)).code, "EACCES");
      }
      for (const file of keys) {
        const read = await readAs(worker, file);
        assert.equal(read.ok, true, `${worker.user} cannot read ${file}: ${read.code}`);
        assert.match(read.text ?? "", /-----BEGIN PRIVATE KEY-----/);
      }
      // The map entries name files; they hold no key.
      for (const file of ["lyk1.conf", "_wildcard.conf"]) {
        assert.doesNotMatch(await readFile(path.join(paths.nginxTls, file), "utf8"), /PRIVATE/);
      }
    };
    await checkAccess();
    assert.equal(await httpsInstance(httpsPort, `lyk1.${DOMAIN}`, ca.rootPem), "lyk1");
    assert.equal(await httpsInstance(httpsPort, `lyw1.${DOMAIN}`, ca.rootPem), "lyw1");

    // The layout before: every key root's only, and inline in HOME/nginx/tls/NAME.pem.
    const entries = {
      lyk1: await readFile(path.join(paths.nginxTls, "lyk1.conf"), "utf8"),
      _wildcard: await readFile(path.join(paths.nginxTls, "_wildcard.conf"), "utf8"),
    };
    const inline = async (cert: string, keyFile: string): Promise<string> =>
      `${(await readFile(cert, "utf8")).trim()}\n${(await readFile(keyFile, "utf8")).trim()}`;
    await writeFile(
      path.join(paths.nginxTls, "lyk1.pem"),
      `lyk1.${DOMAIN} "${await inline(own.cert, own.key)}";\n`,
      { mode: 0o600 },
    );
    await writeFile(
      path.join(paths.nginxTls, "_wildcard.pem"),
      `*.${DOMAIN} "${await inline(wild.cert, wild.key)}";\n`,
      { mode: 0o600 },
    );
    for (const file of Object.keys(entries)) await rm(path.join(paths.nginxTls, `${file}.conf`));
    for (const file of [paths.tls, paths.tlsInstances, ...keys]) {
      await chown(file, 0, 0);
      await chmod(file, file.endsWith(".key") ? 0o600 : 0o700);
    }

    await acc.ok(["boot"]);
    for (const [file, content] of Object.entries(entries)) {
      await assert.rejects(stat(path.join(paths.nginxTls, `${file}.pem`)), /ENOENT/, file);
      assert.equal(await readFile(path.join(paths.nginxTls, `${file}.conf`), "utf8"), content);
    }
    await checkAccess();
    assert.equal(await httpsInstance(httpsPort, `lyk1.${DOMAIN}`, ca.rootPem), "lyk1");
    assert.equal(await httpsInstance(httpsPort, `lyw1.${DOMAIN}`, ca.rootPem), "lyw1");
  },
);
