// tls = "acme" against Debian's pebble (an RFC 8555 test CA) and pebble-challtestsrv (its DNS):
// nothing leaves the machine. pebble validates HTTP-01 on acc's nginx HTTP port; the host names
// resolve through challtestsrv, for pebble and for acc's reachability check alike.
import assert from "node:assert/strict";
import { cp, readdir, readFile, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { test } from "node:test";
import tls from "node:tls";
import { gunzipSync } from "node:zlib";
import { homePaths } from "../src/core/paths.js";
import {
  createAccHome,
  tlsHomeEnv,
  httpRequest,
  logDiagnostics,
  type AccHome,
  type HttpAnswer,
} from "./harness/acc.js";
import { freePort, makeTempDir, removeDir, waitFor } from "./harness/common.js";
import { startTestPebble } from "./harness/pebble.js";

const here = import.meta.dirname;
const ECHO_MODEL = path.resolve(here, "../../test/fixtures/models/echo");
const DOMAIN = "acme.test";
/** pebble's certificates live this long: renewal (at two thirds) comes within the test. */
const VALIDITY_S = 60;

interface Served {
  serial: string;
  validTo: string;
  names: string;
  /** The chain led to the CA given (pebble's current root). */
  authorized: boolean;
  authorizationError: string | null;
}

/** A TLS handshake with acc's nginx for `servername`: the certificate it serves. */
function served(port: number, servername: string, ca: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername,
      ca,
      rejectUnauthorized: false,
    });
    socket.setTimeout(15_000, () => socket.destroy(new Error("handshake timed out")));
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate();
      resolve({
        serial: cert.serialNumber,
        validTo: cert.valid_to,
        names: cert.subjectaltname ?? "",
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : null,
      });
      socket.end();
    });
    socket.once("error", reject);
  });
}

function httpsGet(port: number, host: string, ca: string, path = "/"): Promise<HttpAnswer> {
  return httpRequest(port, `${host}:${port}`, { path, timeoutMs: 60_000, tls: { ca } });
}

function echo(answer: HttpAnswer): Record<string, unknown> {
  assert.equal(answer.status, 200, answer.body);
  return JSON.parse(answer.body) as Record<string, unknown>;
}

/** GET over acc server's local API socket (root's): the metrics page. */
function metrics(home: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: homePaths(home).apiSocket, path: "/metrics" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
  });
}

/** The base64 of a PEM block's first line of data: enough to find it anywhere. */
function pemBody(pem: string): string {
  return pem.split("\n").find((line) => /^[A-Za-z0-9+/]{40,}/.test(line)) ?? pem;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}

interface Event {
  action: string;
  outcome: string;
  cause: string | null;
  message: string;
}

async function listed(
  acc: AccHome,
  name: string,
): Promise<{ name: string; certificate_warning: string | null } | undefined> {
  const all = JSON.parse(await acc.ok(["list", "--json"])) as {
    name: string;
    certificate_warning: string | null;
  }[];
  return all.find((i) => i.name === name);
}

async function tlsEvents(acc: AccHome, name: string): Promise<Event[]> {
  const all = JSON.parse(await acc.ok(["events", name, "--json"])) as Event[];
  return all.filter((event) => event.action === "tls");
}

test(
  "tls acme: create gets a certificate from pebble, host add gets a new one, unreachable hosts refused before any order, renewal unattended (a sleeping instance not woken), CA outage warns and keeps serving, redirect, metric, destroy",
  { timeout: 600_000 },
  async (t) => {
    const httpPort = await freePort();
    const httpsPort = await freePort();
    const pebble = await startTestPebble(t, { httpPort, certValiditySeconds: VALIDITY_S });
    if (pebble === undefined) return;
    const dir = await makeTempDir("acc-acme-ca-");
    t.after(() => removeDir(dir));
    const bundle = path.join(dir, "ca.pem");
    await writeFile(bundle, pebble.caBundlePem);
    for (const host of ["me1", "me2", "me3", "acc"]) {
      await pebble.addA(`${host}.${DOMAIN}`, "127.0.0.1");
    }
    await pebble.addA("shop.acme-other.test", "127.0.0.1");
    await pebble.addA("far.acme-other.test", "192.0.2.1");

    const acc: AccHome = await createAccHome({
      env: tlsHomeEnv({
        domain: DOMAIN,
        httpsPort,
        tls: "acme",
        redirect: true,
        extra: {
          // pebble validates HTTP-01 on this port: known before the home is made.
          ACC_HTTP_PORT: String(httpPort),
          ACC_ACME_DIRECTORY: pebble.directoryUrl,
          ACC_ACME_CA_BUNDLE: bundle,
          ACC_ACME_RESOLVER: pebble.dnsServer,
          ACC_ACME_EMAIL: "ops@acme.test",
          ACC_TLS_CHECK_INTERVAL: "1s",
        },
      }),
    });
    t.after(async () => {
      // nginx's own words, when a handshake or a reload failed.
      await logDiagnostics(t, acc.home);
      await acc.cleanup();
    });
    await cp(ECHO_MODEL, path.join(acc.home, "models/echo"), { recursive: true });
    await acc.ok(["boot"]);
    const paths = homePaths(acc.home);

    // Create: the certificate comes before the first start, so the app's first URL is https.
    const created = await acc.ok(["create", "echo", "--name", "me1"]);
    assert.match(created, /certificate valid until /);
    let roots = await pebble.issuingRoots();
    const first = await served(httpsPort, `me1.${DOMAIN}`, roots.root);
    assert.equal(first.authorized, true, first.authorizationError ?? "");
    assert.equal(first.names, `DNS:me1.${DOMAIN}`);
    const app = echo(await httpsGet(httpsPort, `me1.${DOMAIN}`, roots.root, "/hello"));
    assert.equal(app.instance, "me1");
    assert.equal(app.forwarded_proto, "https");
    assert.equal(app.acc_url, `https://me1.${DOMAIN}:${httpsPort}/`);
    const account = await stat(paths.acmeAccountKey);
    assert.equal(account.mode & 0o777, 0o600);
    assert.equal((await stat(paths.acme)).mode & 0o777, 0o700);

    // acc's admin host gets its own certificate from acc server, and its API answers over HTTPS.
    await waitFor(
      "the admin host's certificate",
      async () =>
        (await served(httpsPort, `acc.${DOMAIN}`, roots.root)).authorized ? true : undefined,
      60_000,
      500,
    );
    const api = await httpsGet(httpsPort, `acc.${DOMAIN}`, roots.root, "/api/v1/status");
    assert.equal(api.status, 401, api.body);
    const adminPlain = await acc.request(`acc.${DOMAIN}`, {
      path: "/api/v1/status",
      timeoutMs: 30_000,
    });
    assert.equal(adminPlain.status, 301);
    assert.equal(adminPlain.headers.location, `https://acc.${DOMAIN}:${httpsPort}/api/v1/status`);
    assert.match(await acc.ok(["tls", "list"]), /^acc +acc\.acme\.test +\S+ +acme$/m);

    // HTTP: redirected, except the challenge path, answered by acc server (never the instance).
    const plain = await acc.request(`me1.${DOMAIN}`, { timeoutMs: 30_000 });
    assert.equal(plain.status, 301);
    assert.equal(plain.headers.location, `https://me1.${DOMAIN}:${httpsPort}/`);
    const probe = await acc.request(`me1.${DOMAIN}`, {
      path: "/.well-known/acme-challenge/nothing-here",
      timeoutMs: 30_000,
    });
    assert.equal(probe.status, 404);
    assert.match(probe.body, /no such challenge/);
    const sneaky = await acc.request(`me1.${DOMAIN}`, {
      path: "/.well-known/acme-challenge/../../etc/passwd",
      timeoutMs: 30_000,
    });
    assert.notEqual(sneaky.status, 200);

    // Host add: a new certificate for both names.
    const added = await acc.ok(["host", "add", "me1", "shop.acme-other.test"]);
    assert.match(added, /certificate valid until /);
    const both = await served(httpsPort, "shop.acme-other.test", roots.root);
    assert.equal(both.authorized, true, both.authorizationError ?? "");
    assert.match(both.names, /DNS:shop\.acme-other\.test/);
    assert.match(both.names, new RegExp(`DNS:me1\\.${DOMAIN.replace(".", "\\.")}`));

    // Hosts that do not reach this server: refused before any order, each named with its reason.
    const ordersBefore = await readFile(paths.acmeOrders, "utf8");
    const noDns = await acc.run(["host", "add", "me1", "nodns.acme-other.test"]);
    assert.equal(noDns.code, 0, noDns.stderr);
    assert.match(
      noDns.stdout,
      /warning: no certificate yet: nodns\.acme-other\.test does not resolve/,
    );
    const issue = await acc.run(["tls", "issue", "me1"]);
    assert.equal(issue.code, 2, issue.stderr);
    assert.match(issue.stderr, /nodns\.acme-other\.test does not resolve/);
    assert.equal(issue.stderr.trim().split("\n").length <= 2, true, issue.stderr);
    await acc.ok(["host", "remove", "me1", "nodns.acme-other.test"]);
    await acc.ok(["host", "add", "me1", "far.acme-other.test"]);
    const far = await acc.run(["tls", "issue", "me1"]);
    assert.equal(far.code, 2, far.stderr);
    assert.match(far.stderr, /far\.acme-other\.test does not reach this server \(192\.0\.2\.1:/);
    await acc.ok(["host", "remove", "me1", "far.acme-other.test"]);
    assert.equal(await readFile(paths.acmeOrders, "utf8"), ordersBefore, "an order was made");
    // Still serving the certificate for both names.
    assert.equal((await served(httpsPort, "shop.acme-other.test", roots.root)).serial, both.serial);

    // Renewal, unattended: me2 sleeps through it (stopped, never woken).
    await acc.ok(["create", "echo", "--name", "me2", "--no-start"]);
    const before = await served(httpsPort, `me2.${DOMAIN}`, roots.root);
    await waitFor(
      "me2's renewal",
      async () =>
        (await tlsEvents(acc, "me2")).find(
          (event) => event.cause === "renewal" && event.outcome === "ok",
        ),
      VALIDITY_S * 1000 * 2,
      500,
    );
    const renewed = await served(httpsPort, `me2.${DOMAIN}`, roots.root);
    assert.notEqual(renewed.serial, before.serial);
    assert.equal(renewed.authorized, true, renewed.authorizationError ?? "");
    const me2 = JSON.parse(await acc.ok(["show", "me2", "--json"])) as {
      state: string;
      certificate: { source: string; warning: string | null };
    };
    assert.equal(me2.state, "stopped");
    assert.equal(me2.certificate.source, "acme");
    assert.equal(me2.certificate.warning, null);
    const renewals = (await tlsEvents(acc, "me2")).filter((e) => e.cause === "renewal");
    assert.match(renewals[0]!.message, /^renewal from .* \(its certificate is past two thirds/);

    // The metric: each instance's expiry.
    const page = await metrics(acc.home);
    for (const name of ["me1", "me2"]) {
      assert.match(
        page,
        new RegExp(`acc_certificate_expiry_timestamp_seconds\\{instance="${name}"\\} \\d{10}`),
      );
    }

    // The CA goes down: attempts fail, each an event, then list, show and status warn; the
    // certificate in place keeps serving.
    await pebble.stop();
    await pebble.addA("new.acme-other.test", "127.0.0.1");
    const serving = await served(httpsPort, `me3.${DOMAIN}`, roots.root).catch(() => undefined);
    assert.equal(serving, undefined, "me3 does not exist yet: no certificate for it");
    const down = await acc.run(["host", "add", "me1", "new.acme-other.test"]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /warning: no certificate yet: .*certificate failed/);
    const kept = await served(httpsPort, "shop.acme-other.test", roots.root);
    await waitFor(
      "me1's warning in acc list",
      async () =>
        (await listed(acc, "me1"))?.certificate_warning?.startsWith("certificate renewal failed")
          ? true
          : undefined,
      120_000,
      500,
    );
    const failed = (await tlsEvents(acc, "me1")).filter((e) => e.outcome === "failed");
    assert.ok(failed.length >= 3, JSON.stringify(failed));
    assert.ok(
      failed.some((e) => / keeps serving\): /.test(e.message)),
      JSON.stringify(failed),
    );
    assert.match(await acc.ok(["list"]), /warning: me1: certificate renewal failed \d+ times/);
    assert.match(await acc.ok(["show", "me1"]), /warning\s+certificate renewal failed/);
    assert.match(await acc.ok(["status"]), /warning\s+me1: certificate renewal failed/);
    const still = await served(httpsPort, "shop.acme-other.test", roots.root);
    assert.equal(still.serial, kept.serial);
    assert.equal(still.authorized, true, still.authorizationError ?? "");

    // The CA is back (a new root, its accounts forgotten): the next attempt succeeds.
    await pebble.start();
    roots = await pebble.issuingRoots();
    await waitFor(
      "me1's certificate after the CA came back",
      async () =>
        (await served(httpsPort, "new.acme-other.test", roots.root)).authorized ? true : undefined,
      120_000,
      500,
    );
    await waitFor(
      "me1's warning gone",
      async () => ((await listed(acc, "me1"))?.certificate_warning === null ? true : undefined),
      30_000,
      500,
    );

    // No backup holds a key: neither the instance's nor the home's ACME account key.
    await acc.ok(["backup", "me1"]);
    const secrets = [
      await readFile(paths.acmeAccountKey, "utf8"),
      await readFile(path.join(paths.tlsInstances, "me1.key"), "utf8"),
    ].map(pemBody);
    const backupFiles = await filesUnder(path.join(acc.home, "backups"));
    assert.ok(
      backupFiles.some((file) => file.endsWith(".tar.gz")),
      backupFiles.join(", "),
    );
    for (const file of backupFiles) {
      const raw = await readFile(file);
      const text = (file.endsWith(".gz") ? gunzipSync(raw) : raw).toString("latin1");
      for (const secret of secrets) assert.ok(!text.includes(secret), `a key is in ${file}`);
    }

    // Destroy: its certificate, key and renewal state go.
    await acc.ok(["destroy", "me2", "--yes"]);
    for (const file of [
      path.join(paths.tlsInstances, "me2.crt"),
      path.join(paths.tlsInstances, "me2.key"),
      path.join(paths.acmeState, "me2.json"),
    ]) {
      await assert.rejects(stat(file), /ENOENT/, file);
    }
  },
);
