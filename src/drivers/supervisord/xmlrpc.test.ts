import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeCall, decodeResponse, encodeCall, encodeValue, type XmlRpcValue } from "./xmlrpc.js";

describe("encodeCall", () => {
  it("writes a method call with typed params", () => {
    assert.equal(
      encodeCall("supervisor.startProcess", ["i-foo:i-foo", true]),
      '<?xml version="1.0"?><methodCall><methodName>supervisor.startProcess</methodName><params>' +
        "<param><value><string>i-foo:i-foo</string></value></param>" +
        "<param><value><boolean>1</boolean></value></param></params></methodCall>",
    );
  });

  it("escapes markup in strings and keeps \\r", () => {
    assert.equal(
      encodeValue("a<b>&c\r\n"),
      "<value><string>a&lt;b&gt;&amp;c&#13;\n</string></value>",
    );
  });

  it("encodes every type", () => {
    assert.equal(encodeValue(null), "<value><nil/></value>");
    assert.equal(encodeValue(false), "<value><boolean>0</boolean></value>");
    assert.equal(encodeValue(-42), "<value><int>-42</int></value>");
    assert.equal(encodeValue(1.5), "<value><double>1.5</double></value>");
    assert.equal(encodeValue(2 ** 40), `<value><double>${2 ** 40}</double></value>`);
    assert.equal(
      encodeValue({ a: [1, "x"], b: {} }),
      "<value><struct><member><name>a</name><value><array><data><value><int>1</int></value>" +
        "<value><string>x</string></value></data></array></value></member>" +
        "<member><name>b</name><value><struct></struct></value></member></struct></value>",
    );
  });

  it("refuses what XML cannot carry", () => {
    assert.throws(() => encodeValue("a\u0001b"), /control characters/);
    assert.throws(() => encodeValue(Number.NaN), /cannot carry/);
    assert.throws(() => encodeCall("bad name", []), /invalid XML-RPC method/);
  });

  it("round-trips nested values", () => {
    const params: XmlRpcValue[] = [
      {
        name: "i-foo",
        nested: { list: [1, -2, 3.25, true, false, null, "", " spaced "] },
        "a&b": "<x>",
      },
      [],
      "&amp; stays literal",
      "日本 \u{1F600}",
    ];
    assert.deepEqual(decodeCall(encodeCall("x.y", params)), { method: "x.y", params });
  });
});

describe("decodeResponse", () => {
  it("reads the layout supervisord writes (Python's xmlrpc.client.dumps)", () => {
    const xml = `<?xml version='1.0'?>
<methodResponse>
<params>
<param>
<value><struct>
<member>
<name>name</name>
<value><string>i-foo</string></value>
</member>
<member>
<name>pid</name>
<value><int>1234</int></value>
</member>
<member>
<name>exitstatus</name>
<value><i4>-1</i4></value>
</member>
<member>
<name>ok</name>
<value><boolean>1</boolean></value>
</member>
<member>
<name>load</name>
<value><double>0.25</double></value>
</member>
<member>
<name>description</name>
<value><string>pid 1234, uptime 0:00:01 &amp; &lt;more&gt; &quot;q&quot; &apos;a&apos; &#65;&#x42;</string></value>
</member>
<member>
<name>untyped</name>
<value>  raw text  </value>
</member>
<member>
<name>empty</name>
<value><string></string></value>
</member>
<member>
<name>spaces</name>
<value><string>   </string></value>
</member>
<member>
<name>nothing</name>
<value><nil/></value>
</member>
<member>
<name>list</name>
<value><array><data>
<value><array><data>
<value><string>i-a</string></value>
</data></array></value>
<value><array><data>
</data></array></value>
</data></array></value>
</member>
</struct></value>
</param>
</params>
</methodResponse>
`;
    assert.deepEqual(decodeResponse(xml), {
      ok: true,
      value: {
        name: "i-foo",
        pid: 1234,
        exitstatus: -1,
        ok: true,
        load: 0.25,
        description: `pid 1234, uptime 0:00:01 & <more> "q" 'a' AB`,
        untyped: "  raw text  ",
        empty: "",
        spaces: "   ",
        nothing: null,
        list: [["i-a"], []],
      },
    });
  });

  it("turns a fault into its code and string", () => {
    const xml = `<?xml version='1.0'?>
<methodResponse>
<fault>
<value><struct>
<member>
<name>faultCode</name>
<value><int>10</int></value>
</member>
<member>
<name>faultString</name>
<value><string>BAD_NAME: i-nope &lt;x&gt;</string></value>
</member>
</struct></value>
</fault>
</methodResponse>
`;
    assert.deepEqual(decodeResponse(xml), {
      ok: false,
      faultCode: 10,
      faultString: "BAD_NAME: i-nope <x>",
    });
  });

  it("keeps a member named __proto__ as data", () => {
    const xml =
      "<methodResponse><params><param><value><struct><member><name>__proto__</name>" +
      "<value><string>x</string></value></member></struct></value></param></params></methodResponse>";
    const decoded = decodeResponse(xml);
    assert.ok(decoded.ok);
    assert.equal(Object.getPrototypeOf(decoded.value), Object.prototype);
    assert.deepEqual(Object.keys(decoded.value as object), ["__proto__"]);
  });

  it("reads CDATA, comments and self-closing tags", () => {
    const xml =
      "<?xml version='1.0'?><!-- hi --><methodResponse><params><param><value><string><![CDATA[<a> & b]]></string>" +
      "</value></param></params></methodResponse>";
    assert.deepEqual(decodeResponse(xml), { ok: true, value: "<a> & b" });
  });

  it("refuses malformed or unsupported documents", () => {
    const wrap = (value: string): string =>
      `<methodResponse><params><param><value>${value}</value></param></params></methodResponse>`;
    assert.throws(() => decodeResponse(wrap("<int>1.5</int>")), /bad XML-RPC int/);
    assert.throws(() => decodeResponse(wrap("<boolean>yes</boolean>")), /bad XML-RPC boolean/);
    assert.throws(() => decodeResponse(wrap("<base64>AA==</base64>")), /unsupported XML-RPC type/);
    assert.throws(() => decodeResponse(wrap("<string>a & b</string>")), /bare &/);
    assert.throws(() => decodeResponse(wrap("<string>&nbsp;</string>")), /unknown XML entity/);
    assert.throws(() => decodeResponse(wrap("<string>x</int>")), /mismatched/);
    assert.throws(() => decodeResponse("<methodResponse><params>"), /unterminated/);
    assert.throws(() => decodeResponse('<!DOCTYPE x [<!ENTITY a "b">]><methodResponse/>'), /DTD/);
    assert.throws(() => decodeResponse("<methodCall/>"), /not an XML-RPC response/);
    assert.throws(() => decodeResponse(""), /one root element/);
  });
});
