import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AccError } from "../lib/errors.js";
import { parseManifest } from "./model.js";
import { findPlaceholders, renderTemplate, templateVariables } from "./template.js";

const VARS = {
  name: "crm",
  port: "20001",
  "params.admin_email": "me@example.com",
  "params.title": 'a & b <c> "d"',
};

function unknown(text: string, source: string, message: string): AccError {
  let caught: unknown;
  try {
    renderTemplate(text, VARS, source);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof AccError, `expected an AccError, got ${String(caught)}`);
  assert.equal(caught.code, "ACC_MODEL");
  assert.equal(caught.message, message);
  return caught;
}

describe("renderTemplate", () => {
  it("replaces placeholders, with or without spaces", () => {
    assert.equal(
      renderTemplate(
        "[app]\nname={{ name }}\nport={{port}}\nadmin={{   params.admin_email   }}\n",
        VARS,
        "app.ini",
      ),
      "[app]\nname=crm\nport=20001\nadmin=me@example.com\n",
    );
  });

  it("writes values as they are: no HTML escaping", () => {
    assert.equal(renderTemplate("title={{ params.title }}", VARS, "t"), 'title=a & b <c> "d"');
  });

  it("renders in one pass: a value holding a placeholder stays as it is", () => {
    const vars = { name: "{{ port }}", port: "1" };
    assert.equal(renderTemplate("{{ name }} {{ port }}", vars, "t"), "{{ port }} 1");
  });

  it("leaves text without a whole placeholder alone", () => {
    for (const text of ["", "plain", "{ name }", "{{ open", "close }}", "{{\nname }}", "${name}"]) {
      assert.equal(renderTemplate(text, VARS, "t"), text);
    }
    assert.equal(renderTemplate("{{{ name }}}", VARS, "t"), "{crm}");
  });

  it("fails on an unknown placeholder, naming the source and the line", () => {
    const error = unknown(
      "a\nb\nc={{ params.admin_mail }}\n",
      "crm: templates/app.ini",
      "crm: templates/app.ini:3: unknown placeholder {{ params.admin_mail }}",
    );
    assert.equal(error.hint, "known: name, port, params.admin_email, params.title");
    unknown(
      "x {{ nmae }}",
      "crm: env GREETING",
      "crm: env GREETING: unknown placeholder {{ nmae }}",
    );
    unknown("{{ params.admin-email }}", "t", "t: unknown placeholder {{ params.admin-email }}");
    unknown("{{ }}", "t", "t: unknown placeholder {{  }}");
    unknown("{{ constructor }}", "t", "t: unknown placeholder {{ constructor }}");
    unknown(`{{ ${"x".repeat(100)} }}`, "t", `t: unknown placeholder {{ ${"x".repeat(60)}… }}`);
  });
});

describe("findPlaceholders", () => {
  it("lists names and lines", () => {
    assert.deepEqual(findPlaceholders("{{ a }}\n\nx {{b.c}} {{ d }}"), [
      { name: "a", line: 1 },
      { name: "b.c", line: 3 },
      { name: "d", line: 3 },
    ]);
  });
});

describe("templateVariables", () => {
  const base = 'name = "m"\nversion = "1"\ncommand = "x"\n[health]\npath = "/"\n';

  it("lists acc's variables and one per parameter", () => {
    const manifest = parseManifest(
      `${base}[params.b]\ntype = "string"\n[params.a]\ntype = "int"\n`,
      "m",
    );
    assert.deepEqual(templateVariables(manifest), [
      "name",
      "port",
      "url",
      "host",
      "data_dir",
      "config_dir",
      "params.b",
      "params.a",
    ]);
  });

  it("adds database_url when the model asks for a database", () => {
    const manifest = parseManifest(`database = "postgres"\n${base}`, "m");
    assert.ok(templateVariables(manifest).includes("database_url"));
  });
});
