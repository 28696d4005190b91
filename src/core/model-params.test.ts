import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AccError } from "../lib/errors.js";
import { parseManifest, PARAM_TYPES, type ModelManifest, type ParamType } from "./model.js";
import {
  MAX_PARAM_LENGTH,
  PASSWORD_BYTES,
  paramValueProblem,
  parseParamArgs,
  resolveParams,
} from "./model-params.js";

const ALL: readonly ParamType[] = PARAM_TYPES;
const TEXT: readonly ParamType[] = ["string", "password"];
const NONE: readonly ParamType[] = [];

/**
 * Each value and the types that accept it; every other type rejects it. Free text (string,
 * password) takes any printable character: the renderers (shell-quoted env file, templates
 * rendered in one pass) keep it inert. Control characters are refused everywhere, since they
 * could start a new line in an env or config file.
 */
const CASES: [label: string, value: string, accepted: readonly ParamType[]][] = [
  ["semicolon", "a;b", TEXT],
  ["newline", "a\nb", NONE],
  ["carriage return", "a\rb", NONE],
  ["NUL", "a\0b", NONE],
  ["tab", "a\tb", NONE],
  ["DEL", "a\x7fb", NONE],
  ["C1 control", "a\x85b", NONE],
  ["line separator", "a\u2028b", NONE],
  ["lone surrogate", "a\ud800b", NONE],
  ["open brace", "{", TEXT],
  ["close brace", "}", TEXT],
  ["placeholder", "{{ name }}", TEXT],
  ["dot dot", "..", TEXT],
  ["path traversal", "../../etc/passwd", TEXT],
  ["slash", "a/b", TEXT],
  ["double quote", 'say "hi"', TEXT],
  ["single quote", "it's", TEXT],
  ["dollar", "$HOME", TEXT],
  ["command substitution", "$(id)", TEXT],
  ["backtick", "`id`", TEXT],
  ["space", "a b", TEXT],
  ["leading space", " a", TEXT],
  ["unicode", "héllo 日本 😀", TEXT],
  ["1024 characters", "x".repeat(MAX_PARAM_LENGTH), TEXT],
  ["1025 characters", "x".repeat(MAX_PARAM_LENGTH + 1), NONE],
  ["10 kB", "x".repeat(10 * 1024), NONE],
  ["empty", "", ["string"]],
  ["email", "admin@example.com", ["string", "password", "email"]],
  ["email with tag", "a.b+tag@sub.example.org", ["string", "password", "email"]],
  ["email, upper case", "Admin@Example.COM", ["string", "password", "email"]],
  ["email, punycode", "x@xn--bcher-kva.example", ["string", "password", "email"]],
  ["email without dot in domain", "root@localhost", TEXT],
  ["email with semicolon", "a;b@x.com", TEXT],
  ["email with quotes", '"a"@x.com', TEXT],
  ["email with space", "a b@x.com", TEXT],
  ["email with dollar", "$a@x.com", TEXT],
  ["email with braces", "{a}@x.com", TEXT],
  ["email with slash", "a/b@x.com", TEXT],
  ["email, double dot", "a..b@x.com", TEXT],
  ["email, domain double dot", "a@x..com", TEXT],
  ["email, domain dash", "a@-x.com", TEXT],
  ["email, two @", "a@b@x.com", TEXT],
  ["email, unicode", "é@x.com", TEXT],
  ["email, no local part", "@x.com", TEXT],
  ["zero", "0", ["string", "password", "int"]],
  ["number", "42", ["string", "password", "int"]],
  ["leading zeros", "007", ["string", "password", "int"]],
  ["15 digits", "9".repeat(15), ["string", "password", "int"]],
  ["16 digits", "9".repeat(16), TEXT],
  ["negative", "-1", TEXT],
  ["decimal", "1.5", TEXT],
  ["exponent", "1e3", TEXT],
  ["hex", "0x10", TEXT],
  ["number with space", " 1", TEXT],
  ["arabic digits", "١٢", TEXT],
  ["true", "true", ["string", "password", "bool"]],
  ["false", "false", ["string", "password", "bool"]],
  ["True", "True", TEXT],
  ["yes", "yes", TEXT],
  ["one as bool", "1", ["string", "password", "int"]],
];

describe("paramValueProblem", () => {
  for (const [label, value, accepted] of CASES) {
    it(`${label}: accepted by ${accepted.length === 0 ? "no type" : accepted.join(", ")}`, () => {
      for (const type of ALL) {
        const problem = paramValueProblem(type, value);
        if (accepted.includes(type))
          assert.equal(problem, undefined, `${type} should accept ${label}`);
        else assert.equal(typeof problem, "string", `${type} should reject ${label}`);
      }
    });
  }
});

function manifestWith(params: string): ModelManifest {
  return parseManifest(
    `name = "hello"\nversion = "1"\ncommand = "x"\n[health]\npath = "/"\n${params}`,
    "model.toml",
  );
}

function invalid(run: () => unknown, message: RegExp): AccError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof AccError, `expected an AccError, got ${String(caught)}`);
  assert.equal(caught.code, "ACC_INVALID");
  assert.match(caught.message, message);
  return caught;
}

const MODEL = manifestWith(`
[params.admin_email]
type = "email"
required = true
description = "Who gets admin mail"

[params.workers]
type = "int"
default = 2

[params.debug]
type = "bool"

[params.title]
type = "string"

[params.admin_password]
type = "password"

[params.api_token]
type = "string"
secret = true
`);

function fakeGenerate(bytes: number): string {
  assert.equal(bytes, PASSWORD_BYTES);
  return "G".repeat(24);
}

describe("resolveParams", () => {
  it("fills defaults, generates passwords and lists secrets", () => {
    const resolved = resolveParams(MODEL, { admin_email: "me@example.com" }, fakeGenerate);
    assert.deepEqual(resolved, {
      values: {
        admin_email: "me@example.com",
        workers: "2",
        debug: "",
        title: "",
        admin_password: "G".repeat(24),
        api_token: "",
      },
      secrets: ["admin_password", "api_token"],
      generated: ["admin_password"],
    });
  });

  it("keeps given values, a given password included", () => {
    const resolved = resolveParams(
      MODEL,
      { admin_email: "me@example.com", workers: "8", debug: "true", admin_password: "s3cret!$;'" },
      () => assert.fail("nothing to generate"),
    );
    assert.equal(resolved.values.workers, "8");
    assert.equal(resolved.values.admin_password, "s3cret!$;'");
    assert.deepEqual(resolved.generated, []);
  });

  it("rejects an unknown parameter and lists the known ones", () => {
    const error = invalid(
      () => resolveParams(MODEL, { admin_email: "me@example.com", admin_mail: "x" }, fakeGenerate),
      /^unknown parameter "admin_mail" for model hello$/,
    );
    assert.equal(
      error.hint,
      "known: admin_email, workers, debug, title, admin_password, api_token",
    );
    const none = invalid(
      () => resolveParams(manifestWith(""), { x: "1" }, fakeGenerate),
      /unknown parameter "x"/,
    );
    assert.equal(none.hint, "model hello takes no parameters");
  });

  it("does not take Object.prototype's names for parameters", () => {
    invalid(
      () => resolveParams(MODEL, { constructor: "x" }, fakeGenerate),
      /^unknown parameter "constructor"/,
    );
    invalid(
      () => resolveParams(MODEL, { toString: "x" }, fakeGenerate),
      /^unknown parameter "toString"/,
    );
  });

  it("names every missing required parameter", () => {
    const model = manifestWith(
      `[params.a]\ntype = "string"\nrequired = true\n[params.b]\ntype = "int"\nrequired = true\n`,
    );
    const error = invalid(
      () => resolveParams(model, {}, fakeGenerate),
      /^missing required parameters a, b for model hello$/,
    );
    assert.equal(error.hint, "give --param a=VALUE --param b=VALUE");
    invalid(
      () => resolveParams(model, { a: "", b: "1" }, fakeGenerate),
      /^invalid value "" for parameter a of model hello: must not be empty$/,
    );
  });

  it("names the parameter and a shortened value when a value is bad", () => {
    const given = { admin_email: "me@example.com" };
    invalid(
      () => resolveParams(MODEL, { ...given, workers: "2; rm -rf /" }, fakeGenerate),
      /^invalid value "2; rm -rf \/" for parameter workers of model hello: expected a whole number/,
    );
    invalid(
      () => resolveParams(MODEL, { ...given, title: "a\nINJECTED=1" }, fakeGenerate),
      /^invalid value "a\\nINJECTED=1" for parameter title of model hello: control characters/,
    );
    const long = invalid(
      () => resolveParams(MODEL, { ...given, title: "y".repeat(10 * 1024) }, fakeGenerate),
      /^invalid value "y{60}…" \(10240 characters\) for parameter title of model hello: longer than 1024 characters$/,
    );
    assert.ok(long.message.length < 200);
    const email = invalid(
      () => resolveParams(MODEL, { admin_email: "me@localhost" }, fakeGenerate),
      /^invalid value "me@localhost" for parameter admin_email of model hello: expected an email address/,
    );
    assert.equal(email.hint, "admin_email takes an email address (Who gets admin mail)");
  });

  it("never shows a secret value in an error", () => {
    const error = invalid(
      () =>
        resolveParams(
          MODEL,
          { admin_email: "me@example.com", api_token: "zzsecret\n" },
          fakeGenerate,
        ),
      /^invalid value \(secret, not shown\) for parameter api_token of model hello: control characters/,
    );
    assert.ok(!error.message.includes("zzsecret"));
    invalid(
      () =>
        resolveParams(MODEL, { admin_email: "me@example.com", admin_password: "" }, fakeGenerate),
      /^invalid value \(secret, not shown\) for parameter admin_password of model hello: must not be empty$/,
    );
  });

  it("treats a bad generated password as a bug", () => {
    assert.throws(
      () => resolveParams(MODEL, { admin_email: "me@example.com" }, () => "a\nb"),
      (error: unknown) => error instanceof Error && !(error instanceof AccError),
    );
  });
});

describe("parseParamArgs", () => {
  it("splits NAME=VALUE at the first '='", () => {
    assert.deepEqual(parseParamArgs(["a=1", "b=x=y", "c=", "d= spaced "]), {
      a: "1",
      b: "x=y",
      c: "",
      d: " spaced ",
    });
    assert.deepEqual(parseParamArgs([]), {});
  });

  it("rejects a bad form, naming it", () => {
    invalid(
      () => parseParamArgs(["admin_email"]),
      /^invalid --param "admin_email": expected NAME=VALUE$/,
    );
    invalid(() => parseParamArgs(["=x"]), /^invalid parameter name "" in --param NAME=VALUE$/);
    invalid(() => parseParamArgs(["Admin=x"]), /^invalid parameter name "Admin"/);
    invalid(() => parseParamArgs(["a-b=x"]), /^invalid parameter name "a-b"/);
    invalid(() => parseParamArgs(["__proto__=x"]), /^invalid parameter name "__proto__"/);
    invalid(() => parseParamArgs(["a=1", "a=2"]), /^parameter a is given twice$/);
  });

  it("does not echo the value of a badly named parameter", () => {
    const error = invalid(() => parseParamArgs(["Password=hunter2"]), /invalid parameter name/);
    assert.ok(!error.message.includes("hunter2"));
  });
});
