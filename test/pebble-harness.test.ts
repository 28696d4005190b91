// The pebble harness itself: its DNS answers what a test adds and nothing else, its directory
// is reached with the test CA alone, its roots are served, and stop/start is an outage and back.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { Resolver } from "node:dns/promises";
import https from "node:https";
import { test } from "node:test";
import { freePort } from "./harness/common.js";
import { startTestPebble } from "./harness/pebble.js";

function getJson(url: string, ca: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200) reject(new Error(`${url}: ${res.statusCode} ${body}`));
        else resolve(JSON.parse(body) as Record<string, unknown>);
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${url} timed out`)));
    req.on("error", reject);
  });
}

test(
  "pebble harness: DNS, directory, roots, outage and recovery",
  { timeout: 120_000 },
  async (t) => {
    const pebble = await startTestPebble(t, {
      httpPort: await freePort(),
      certValiditySeconds: 3600,
    });
    if (!pebble) return;

    // DNS: a name added resolves to its address alone; replaced, then removed; others never.
    const resolver = new Resolver({ timeout: 1_000, tries: 2 });
    resolver.setServers([pebble.dnsServer]);
    await pebble.addA("shop.pb.test", "127.0.0.1");
    assert.deepEqual(await resolver.resolve4("shop.pb.test"), ["127.0.0.1"]);
    await pebble.addA("shop.pb.test", "192.0.2.1");
    assert.deepEqual(await resolver.resolve4("shop.pb.test"), ["192.0.2.1"]);
    await assert.rejects(resolver.resolve6("shop.pb.test"), { code: "ENODATA" });
    await assert.rejects(resolver.resolve4("unknown.pb.test"), { code: "ENODATA" });
    await pebble.removeA("shop.pb.test");
    await assert.rejects(resolver.resolve4("shop.pb.test"), { code: "ENODATA" });

    // The directory, over HTTPS trusting the test CA; and not without it.
    const directory = await getJson(pebble.directoryUrl, pebble.caBundlePem);
    const base = new URL(pebble.directoryUrl).origin;
    for (const key of ["newAccount", "newOrder", "newNonce"]) {
      assert.ok(String(directory[key]).startsWith(`${base}/`), `${key}: ${String(directory[key])}`);
    }
    await assert.rejects(
      new Promise((resolve, reject) => {
        https
          .get(pebble.directoryUrl, { agent: false, timeout: 5_000 }, resolve)
          .on("error", reject);
      }),
      { code: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY" },
    );

    // The issuing root and intermediate: certificates, the intermediate signed by the root.
    const first = await pebble.issuingRoots();
    const root = new X509Certificate(first.root);
    const intermediate = new X509Certificate(first.intermediate);
    assert.ok(root.ca && intermediate.ca);
    assert.ok(intermediate.verify(root.publicKey), "the intermediate is signed by the root");
    assert.ok(intermediate.checkIssued(root));

    // Outage: the directory is unreachable; recovery: it answers again, with a new root.
    await pebble.stop();
    await assert.rejects(getJson(pebble.directoryUrl, pebble.caBundlePem), {
      code: "ECONNREFUSED",
    });
    await pebble.start();
    const again = await getJson(pebble.directoryUrl, pebble.caBundlePem);
    assert.equal(again.newOrder, directory.newOrder);
    const second = await pebble.issuingRoots();
    assert.notEqual(second.root, first.root, "pebble makes a new root at each start");
    assert.match(pebble.log(), /\[pebble\] .*Disabling random VA sleeps/);
    assert.match(pebble.log(), /\[pebble\] .*certificate validity period of 3600 seconds/);
  },
);
