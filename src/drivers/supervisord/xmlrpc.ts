// XML-RPC encoding and decoding, for the subset supervisord speaks. Written by hand: the one npm
// XML-RPC library of note (`xmlrpc`) is unmaintained since 2016, and this subset (no base64,
// no dates, no attributes) fits in one small pure file.

export type XmlRpcValue = string | number | boolean | null | XmlRpcValue[] | XmlRpcStruct;
export interface XmlRpcStruct {
  [key: string]: XmlRpcValue;
}

export type XmlRpcResponse =
  { ok: true; value: XmlRpcValue } | { ok: false; faultCode: number; faultString: string };

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;
// XML 1.0 cannot carry these at all, not even as character references.
// eslint-disable-next-line no-control-regex -- these control characters are what is matched
const NOT_XML = /[\0-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/;

export function encodeCall(method: string, params: readonly XmlRpcValue[]): string {
  if (!/^[A-Za-z0-9_.:/]+$/.test(method)) throw new Error(`invalid XML-RPC method name: ${method}`);
  const encoded = params.map((param) => `<param>${encodeValue(param)}</param>`).join("");
  return `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${encoded}</params></methodCall>`;
}

export function encodeValue(value: XmlRpcValue): string {
  if (value === null) return "<value><nil/></value>";
  switch (typeof value) {
    case "string":
      return `<value><string>${escapeText(value)}</string></value>`;
    case "boolean":
      return `<value><boolean>${value ? 1 : 0}</boolean></value>`;
    case "number":
      if (Number.isInteger(value) && value >= INT_MIN && value <= INT_MAX) {
        return `<value><int>${value}</int></value>`;
      }
      if (!Number.isFinite(value)) throw new Error(`XML-RPC cannot carry ${value}`);
      return `<value><double>${value}</double></value>`;
  }
  if (Array.isArray(value)) {
    return `<value><array><data>${value.map(encodeValue).join("")}</data></array></value>`;
  }
  const members = Object.entries(value)
    .map(
      ([name, member]) => `<member><name>${escapeText(name)}</name>${encodeValue(member)}</member>`,
    )
    .join("");
  return `<value><struct>${members}</struct></value>`;
}

function escapeText(text: string): string {
  if (NOT_XML.test(text))
    throw new Error(`XML-RPC cannot carry control characters: ${JSON.stringify(text)}`);
  // \r as a reference, or the XML parser would turn \r\n into \n.
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll("\r", "&#13;");
}

export function decodeResponse(xml: string): XmlRpcResponse {
  const root = parseXml(xml);
  if (root.name !== "methodResponse") throw new Error(`not an XML-RPC response: <${root.name}>`);
  const body = onlyChild(root);
  if (body.name === "fault") {
    const fault = decodeValue(expect(onlyChild(body), "value"));
    if (
      !isStruct(fault) ||
      typeof fault.faultCode !== "number" ||
      typeof fault.faultString !== "string"
    ) {
      throw new Error("malformed XML-RPC fault");
    }
    return { ok: false, faultCode: fault.faultCode, faultString: fault.faultString };
  }
  const param = expect(onlyChild(expect(body, "params")), "param");
  return { ok: true, value: decodeValue(expect(onlyChild(param), "value")) };
}

/** Decodes a request the same way; the tests use it to read back what encodeCall wrote. */
export function decodeCall(xml: string): { method: string; params: XmlRpcValue[] } {
  const root = parseXml(xml);
  if (root.name !== "methodCall") throw new Error(`not an XML-RPC call: <${root.name}>`);
  const parts = elements(root);
  const method = textOf(expect(parts[0], "methodName"));
  const params = parts[1] ? elements(expect(parts[1], "params")) : [];
  return {
    method,
    params: params.map((p) => decodeValue(expect(onlyChild(expect(p, "param")), "value"))),
  };
}

export function isStruct(value: XmlRpcValue | undefined): value is XmlRpcStruct {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function decodeValue(value: XmlElement): XmlRpcValue {
  const typed = elements(value);
  // A <value> without a type element is a string (XML-RPC spec).
  if (typed.length === 0) return textOf(value);
  if (typed.length > 1) throw new Error("an XML-RPC <value> holds more than one element");
  const el = typed[0] as XmlElement;
  switch (el.name) {
    case "string":
      return textOf(el);
    case "int":
    case "i4":
    case "i8": {
      const text = textOf(el).trim();
      const n = Number(text);
      if (!/^[+-]?\d+$/.test(text) || !Number.isSafeInteger(n))
        throw new Error(`bad XML-RPC int: ${text}`);
      return n;
    }
    case "boolean": {
      const text = textOf(el).trim();
      if (text !== "0" && text !== "1") throw new Error(`bad XML-RPC boolean: ${text}`);
      return text === "1";
    }
    case "double": {
      const text = textOf(el).trim();
      const n = Number(text);
      if (text === "" || Number.isNaN(n)) throw new Error(`bad XML-RPC double: ${text}`);
      return n;
    }
    case "nil":
      return null;
    case "array":
      return elements(expect(onlyChild(el), "data")).map((v) => decodeValue(expect(v, "value")));
    case "struct":
      // fromEntries defines own properties, so a member named __proto__ stays data.
      return Object.fromEntries(
        elements(el).map((member) => {
          const [name, memberValue, extra] = elements(expect(member, "member"));
          if (extra !== undefined) throw new Error("an XML-RPC <member> holds extra elements");
          return [textOf(expect(name, "name")), decodeValue(expect(memberValue, "value"))];
        }),
      );
    default:
      throw new Error(`unsupported XML-RPC type <${el.name}>`);
  }
}

interface XmlElement {
  name: string;
  children: (XmlElement | string)[];
}

function elements(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => typeof c !== "string");
}

function onlyChild(el: XmlElement): XmlElement {
  const [first, extra] = elements(el);
  if (first === undefined || extra !== undefined)
    throw new Error(`<${el.name}> must hold one element`);
  return first;
}

function expect(el: XmlElement | undefined, name: string): XmlElement {
  if (el?.name !== name)
    throw new Error(`expected <${name}> in XML-RPC, got <${el?.name ?? "nothing"}>`);
  return el;
}

function textOf(el: XmlElement): string {
  return el.children
    .map((c) => {
      if (typeof c !== "string") throw new Error(`unexpected <${c.name}> inside <${el.name}>`);
      return c;
    })
    .join("");
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(
    /&(#x[0-9A-Fa-f]+|#[0-9]+|[A-Za-z]+);|&/g,
    (whole, ref: string | undefined) => {
      if (ref === undefined) throw new Error("a bare & in XML text");
      if (ref.startsWith("#")) {
        const code = ref[1] === "x" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
        if (code > 0x10ffff) throw new Error(`bad character reference ${whole}`);
        return String.fromCodePoint(code);
      }
      const entity = ENTITIES[ref];
      if (entity === undefined) throw new Error(`unknown XML entity ${whole}`);
      return entity;
    },
  );
}

/**
 * A parser for the XML that XML-RPC uses: elements, text, entities, CDATA, comments and the
 * declaration. Attributes are skipped; DTDs are refused. Whitespace-only text between elements
 * is dropped, except inside elements that hold only text (a string of spaces is a value).
 */
function parseXml(xml: string): XmlElement {
  const root: XmlElement = { name: "", children: [] };
  const stack: XmlElement[] = [root];
  let i = 0;
  const top = (): XmlElement => stack[stack.length - 1] as XmlElement;
  const skipPast = (marker: string): void => {
    const end = xml.indexOf(marker, i);
    if (end < 0) throw new Error(`unterminated XML (missing ${marker})`);
    i = end + marker.length;
  };
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    if (lt !== i) {
      const end = lt < 0 ? xml.length : lt;
      top().children.push(decodeEntities(xml.slice(i, end)));
      i = end;
      continue;
    }
    if (xml.startsWith("<?", i)) {
      skipPast("?>");
    } else if (xml.startsWith("<!--", i)) {
      skipPast("-->");
    } else if (xml.startsWith("<![CDATA[", i)) {
      const start = i + "<![CDATA[".length;
      skipPast("]]>");
      top().children.push(xml.slice(start, i - 3));
    } else if (xml.startsWith("<!", i)) {
      throw new Error("XML with a DTD is not accepted");
    } else if (xml.startsWith("</", i)) {
      const end = xml.indexOf(">", i);
      if (end < 0) throw new Error("unterminated XML end tag");
      const name = xml.slice(i + 2, end).trim();
      const open = stack.pop();
      if (open === undefined || open === root || open.name !== name) {
        throw new Error(`mismatched XML end tag </${name}>`);
      }
      i = end + 1;
    } else {
      const match =
        /^<([A-Za-z_][\w.:-]*)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(
          xml.slice(i, i + 1024),
        );
      if (!match) throw new Error(`malformed XML tag at offset ${i}`);
      const el: XmlElement = { name: match[1] as string, children: [] };
      top().children.push(el);
      if (match[3] !== "/") stack.push(el);
      i += match[0].length;
    }
  }
  if (stack.length !== 1) throw new Error(`unterminated XML element <${top().name}>`);
  dropLayoutWhitespace(root);
  const [doc, extra] = elements(root);
  if (
    doc === undefined ||
    extra !== undefined ||
    root.children.some((c) => typeof c === "string")
  ) {
    throw new Error("XML must hold exactly one root element");
  }
  return doc;
}

function dropLayoutWhitespace(el: XmlElement): void {
  if (!el.children.some((c) => typeof c !== "string")) return;
  el.children = el.children.filter((c) => typeof c !== "string" || c.trim() !== "");
  for (const child of el.children) if (typeof child !== "string") dropLayoutWhitespace(child);
}
