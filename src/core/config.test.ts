import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "smol-toml";
import { AccError } from "../lib/errors.js";
import { CONFIG_KEYS, renderConfigFile, resolveConfig } from "./config.js";

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
