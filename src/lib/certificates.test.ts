import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { createTestCa, type TestCa } from "../../test/harness/certs.js";
import { makeTempDir, removeDir } from "../../test/harness/common.js";
import { dnsNamesOf, hostCovered } from "../core/tls-hosts.js";
import { checkCertificate, type CertificateInput } from "./certificates.js";

test("hostCovered: exact names, and a wildcard for one label only", () => {
  const names = ["shop.example.test", "*.example.test"];
  assert.equal(hostCovered(names, "shop.example.test"), true);
  assert.equal(hostCovered(names, "SHOP.example.test"), true);
  assert.equal(hostCovered(names, "crm.example.test"), true);
  assert.equal(hostCovered(names, "a.b.example.test"), false);
  assert.equal(hostCovered(names, "example.test"), false);
  assert.equal(hostCovered(names, "crm.example.test.evil"), false);
  assert.equal(hostCovered(["*.example.test"], "*.example.test"), true);
  assert.equal(hostCovered([], "x.example.test"), false);
});

test("dnsNamesOf: DNS entries only, quoted ones read, junk dropped", () => {
  assert.deepEqual(
    dnsNamesOf(
      'DNS:A.example.test, IP Address:127.0.0.1, DNS:*.example.test, DNS:"b.example.test"',
    ),
    ["a.example.test", "*.example.test", "b.example.test"],
  );
  assert.deepEqual(dnsNamesOf("DNS:*.*.example.test, DNS:bad name.test, DNS:*.test"), []);
  assert.deepEqual(dnsNamesOf(undefined), []);
});

test("checkCertificate: key, chain order, dates and hosts", async (t) => {
  const dir = await makeTempDir("acc-cert-unit-");
  t.after(() => removeDir(dir));
  const ca: TestCa = await createTestCa(dir);
  const good = await ca.issue("good", ["ta1.example.test", "shop.example.test"]);
  const other = await ca.issue("other", ["ta1.example.test"]);
  const wild = await ca.issue("wild", ["*.example.test"]);
  const short = await ca.issue("short", ["ta1.example.test"], { days: 10 });
  const expired = await ca.issue("expired", ["ta1.example.test"], { expired: true });
  const read = (file: string): Promise<string> => readFile(file, "utf8");
  const base = async (over: Partial<CertificateInput> = {}): Promise<CertificateInput> => ({
    cert: await read(good.cert),
    key: await read(good.key),
    certFile: "good.crt",
    keyFile: "good.key",
    hosts: ["ta1.example.test", "shop.example.test"],
    now: new Date(),
    ...over,
  });

  const ok = checkCertificate(await base());
  assert.deepEqual(ok.names, ["ta1.example.test", "shop.example.test"]);
  assert.deepEqual(ok.warnings, []);
  assert.equal((ok.chainPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  assert.match(ok.keyPem, /^-----BEGIN PRIVATE KEY-----/);

  const wildOk = checkCertificate(
    await base({
      cert: await read(wild.cert),
      key: await read(wild.key),
      hosts: ["*.example.test"],
    }),
  );
  assert.deepEqual(wildOk.names, ["*.example.test"]);
  const warned = checkCertificate(
    await base({
      cert: await read(short.cert),
      key: await read(short.key),
      hosts: ["ta1.example.test"],
    }),
  );
  assert.match(warned.warnings[0] ?? "", /good\.crt expires on .* in less than 30 days/);

  const refusals: [Partial<CertificateInput>, RegExp][] = [
    [
      { key: await read(other.key) },
      /^the key in good\.key does not match the certificate in good\.crt$/,
    ],
    [
      { cert: await read(good.chainReversed) },
      /^certificate 1 in good\.crt is not signed by certificate 2$/,
    ],
    [
      { cert: (await read(good.leaf)) + (await read(wild.leaf)) },
      /^certificate 1 in good\.crt is not signed by certificate 2$/,
    ],
    [
      { cert: await read(expired.cert), key: await read(expired.key), hosts: ["ta1.example.test"] },
      /^the certificate in good\.crt expired on 20/,
    ],
    [{ now: new Date(Date.now() + 100 * 86400_000) }, /expired on/],
    [{ now: new Date(Date.now() - 2 * 86400_000) }, /is not valid before/],
    [
      { hosts: ["ta1.example.test", "crm.example.test"] },
      /^the certificate in good\.crt does not cover crm\.example\.test$/,
    ],
    [
      { cert: await read(wild.cert), key: await read(wild.key), hosts: ["a.b.example.test"] },
      /does not cover a\.b\.example\.test/,
    ],
    [{ cert: "garbage\n" }, /^good\.crt holds no PEM certificate$/],
    [
      { cert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" },
      /^certificate 1 in good\.crt cannot be read$/,
    ],
    [{ key: "nothing" }, /^good\.key holds no PEM private key$/],
    [
      { key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" },
      /^the private key in good\.key cannot be read$/,
    ],
  ];
  for (const [over, message] of refusals) {
    const input = await base(over);
    assert.throws(
      () => checkCertificate(input),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "ACC_INVALID");
        assert.match(error.message, message);
        return true;
      },
    );
  }
});
