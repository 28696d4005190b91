import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "smol-toml";
import { AccError } from "../lib/errors.js";
import { CONFIG_KEYS, LETSENCRYPT_PRODUCTION, renderConfigFile, resolveConfig } from "./config.js";

test("defaults differ for root and a normal user", () => {
  assert.equal(resolveConfig({}, {}, true).http_port, 80);
  assert.equal(resolveConfig({}, {}, false).http_port, 8080);
  assert.equal(resolveConfig({}, {}, false).domain, "localhost");
  assert.equal(resolveConfig({}, {}, false).idle_timeout, 15 * 60_000);
});

test("env ACC_<KEY> wins over the file, which wins over defaults", () => {
  const config = resolveConfig(
    { http_port: 8081, domain: "example.com" },
    { ACC_HTTP_PORT: "9090" },
    false,
  );
  assert.equal(config.http_port, 9090);
  assert.equal(config.domain, "example.com");
  assert.equal(resolveConfig({ idle_timeout: "never" }, {}, false).idle_timeout, null);
});

test("admin_host follows the domain unless set, and is a host name", () => {
  assert.equal(resolveConfig({}, {}, false).admin_host, "acc.localhost");
  assert.equal(resolveConfig({ domain: "example.com" }, {}, true).admin_host, "acc.example.com");
  assert.equal(
    resolveConfig({}, { ACC_DOMAIN: "example.org" }, false).admin_host,
    "acc.example.org",
  );
  assert.equal(
    resolveConfig({ admin_host: "Admin.Example.com" }, {}, false).admin_host,
    "admin.example.com",
  );
  assert.equal(
    resolveConfig({ admin_host: "a.example.com" }, { ACC_ADMIN_HOST: "b.example.com" }, false)
      .admin_host,
    "b.example.com",
  );
  assert.throws(
    () => resolveConfig({ admin_host: "acc example" }, {}, false),
    /invalid admin_host "acc example" in acc.toml/,
  );
  assert.throws(
    () => resolveConfig({}, { ACC_ADMIN_HOST: "x;y" }, false),
    /invalid admin_host "x;y" in env ACC_ADMIN_HOST/,
  );
  const text = renderConfigFile({ domain: "example.com" }, false);
  assert.match(text, /^# admin_host = "acc.example.com"$/m);
});

test("bad values and unknown keys are refused, naming them", () => {
  assert.throws(
    () => resolveConfig({ http_port: 70000 }, {}, false),
    /invalid http_port "70000" in acc.toml/,
  );
  assert.throws(
    () => resolveConfig({}, { ACC_HTTP_PORT: "x" }, false),
    /invalid http_port "x" in env ACC_HTTP_PORT/,
  );
  assert.throws(() => resolveConfig({ htp_port: 1 }, {}, false), /unknown key "htp_port"/);
  assert.throws(() => resolveConfig({ domain: "a b" }, {}, false), AccError);
  assert.throws(
    () => resolveConfig({ instance_port_min: 3000, instance_port_max: 2000 }, {}, false),
    /port range/,
  );
});

test("the rendered acc.toml documents every key and parses back to the defaults", () => {
  const text = renderConfigFile({ http_port: 8099 }, false);
  for (const key of Object.keys(CONFIG_KEYS)) assert.match(text, new RegExp(`^#? ?${key} = `, "m"));
  const config = resolveConfig(parse(text), {}, false);
  assert.equal(config.http_port, 8099);
  assert.deepEqual({ ...config, http_port: 8080 }, resolveConfig({}, {}, false));
});

test("service_user, replaced by nginx_user and postgres_user, is refused with both names", () => {
  for (const [file, env, where] of [
    [{ service_user: "acc" }, {}, "acc.toml"],
    [{}, { ACC_SERVICE_USER: "acc" }, "env ACC_SERVICE_USER"],
  ] as const) {
    assert.throws(
      () => resolveConfig(file, env, true),
      (error: unknown) =>
        error instanceof AccError &&
        error.code === "ACC_INVALID" &&
        error.message === `service_user in ${where} is replaced by nginx_user and postgres_user` &&
        /nginx_user .*postgres_user/.test(error.hint ?? ""),
    );
  }
});

test("nginx_user and postgres_user: defaults, and never one user, root or an instance's", () => {
  const config = resolveConfig({}, {}, true);
  assert.deepEqual([config.nginx_user, config.postgres_user], ["acc_nginx", "acc_postgres"]);
  assert.equal(resolveConfig({ nginx_user: "www-data" }, {}, true).nginx_user, "www-data");
  assert.throws(
    () => resolveConfig({ nginx_user: "pg", postgres_user: "pg" }, {}, true),
    /nginx_user and postgres_user are both "pg"/,
  );
  assert.throws(() => resolveConfig({ postgres_user: "root" }, {}, true), /invalid postgres_user/);
  assert.throws(() => resolveConfig({}, { ACC_NGINX_USER: "acc-web" }, true), /invalid nginx_user/);
});

test("tls keys: off by default, https_port 443 or 8443, acme keys checked, ports apart", () => {
  const user = resolveConfig({}, {}, false);
  assert.deepEqual([user.tls, user.https_port, user.http_redirect], ["off", 8443, false]);
  assert.equal(resolveConfig({}, {}, true).https_port, 443);
  const manual = resolveConfig(
    { tls: "manual", http_redirect: true },
    { ACC_HTTPS_PORT: "9443" },
    false,
  );
  assert.deepEqual([manual.tls, manual.https_port, manual.http_redirect], ["manual", 9443, true]);
  const acme = resolveConfig(
    { tls: "acme", acme_email: "ops@example.org", acme_resolver: "127.0.0.1:8053" },
    {},
    false,
  );
  assert.deepEqual(
    [acme.tls, acme.acme_directory, acme.acme_email, acme.acme_ca_bundle, acme.acme_resolver],
    ["acme", LETSENCRYPT_PRODUCTION, "ops@example.org", "", "127.0.0.1:8053"],
  );
  assert.equal(acme.tls_check_interval, 3600_000);
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ acme_directory: "http://ca.test/dir" }, /invalid acme_directory "http:\/\/ca.test\/dir"/],
    [{ acme_directory: "https://ca.test/a b" }, /invalid acme_directory/],
    [{ acme_email: "ops" }, /invalid acme_email "ops" in acc.toml/],
    [{ acme_email: "a@b.org,c@d.org" }, /invalid acme_email/],
    [{ acme_ca_bundle: "ca.pem" }, /invalid acme_ca_bundle "ca.pem"/],
    [{ acme_resolver: "1.2.3.4:99999" }, /invalid acme_resolver/],
    [{ acme_resolver: "dns.example" }, /invalid acme_resolver "dns.example"/],
  ];
  for (const [file, message] of refused) {
    assert.throws(() => resolveConfig({ tls: "acme", ...file }, {}, false), message);
  }
  assert.throws(() => resolveConfig({ tls: "yes" }, {}, false), /invalid tls "yes" in acc.toml/);
  assert.throws(
    () => resolveConfig({ tls: "manual", https_port: 8080 }, {}, false),
    /https_port and http_port are both 8080/,
  );
  // Off, the HTTPS port is not used: it may be anything.
  assert.equal(resolveConfig({ https_port: 8080 }, {}, false).https_port, 8080);
});
