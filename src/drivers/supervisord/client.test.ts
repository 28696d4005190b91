import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { AccError } from "../../lib/errors.js";
import { createSupervisorClient, FAULT, isFault, SupervisorFault } from "./client.js";
import { decodeCall, encodeValue, type XmlRpcValue } from "./xmlrpc.js";

// A stand-in for supervisord on a unix socket: answers each call by its method name.
describe("createSupervisorClient", () => {
  let dir: string;
  let socketPath: string;
  const seen: {
    method: string;
    params: XmlRpcValue[];
    url: string | undefined;
    httpMethod: string | undefined;
  }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const call = decodeCall(Buffer.concat(chunks).toString("utf8"));
      seen.push({ ...call, url: req.url, httpMethod: req.method });
      const respond = (body: string): void => {
        res.writeHead(200, { "Content-Type": "text/xml" });
        res.end(`<?xml version='1.0'?>\n<methodResponse>\n${body}\n</methodResponse>\n`);
      };
      switch (call.method) {
        case "echo":
          respond(`<params><param>${encodeValue(call.params)}</param></params>`);
          break;
        case "fault":
          respond(
            `<fault>${encodeValue({ faultCode: FAULT.ALREADY_STARTED, faultString: "ALREADY_STARTED: i-x" })}</fault>`,
          );
          break;
        case "broken":
          res.writeHead(500);
          res.end("oops");
          break;
        case "slow":
          // Never answers: the client's timeout must end the call.
          break;
      }
    });
  });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "acc-rpc-"));
    socketPath = path.join(dir, "rpc.sock");
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it("posts to /RPC2 and decodes the answer", async () => {
    const client = createSupervisorClient({ socketPath, timeoutMs: 2000 });
    const value = await client.call("echo", ["i-foo:i-foo", true, { n: 1 }]);
    assert.deepEqual(value, ["i-foo:i-foo", true, { n: 1 }]);
    assert.deepEqual(seen.at(-1), {
      method: "echo",
      params: ["i-foo:i-foo", true, { n: 1 }],
      url: "/RPC2",
      httpMethod: "POST",
    });
  });

  it("throws a SupervisorFault for a fault", async () => {
    const client = createSupervisorClient({ socketPath, timeoutMs: 2000 });
    const error = await client.call("fault").then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof SupervisorFault);
    assert.equal(error.faultCode, 60);
    assert.equal(error.faultString, "ALREADY_STARTED: i-x");
    assert.ok(isFault(error, FAULT.NOT_RUNNING, FAULT.ALREADY_STARTED));
    assert.ok(!isFault(error, FAULT.BAD_NAME));
  });

  it("times out a call that gets no answer", async () => {
    const client = createSupervisorClient({ socketPath, timeoutMs: 5000 });
    const started = Date.now();
    await assert.rejects(client.call("slow", [], { timeoutMs: 100 }), (error: unknown) => {
      assert.ok(error instanceof AccError);
      assert.equal(error.code, "ACC_SUPERVISOR");
      assert.match(error.message, /did not answer slow within 100 ms/);
      return true;
    });
    assert.ok(Date.now() - started < 2000);
  });

  it("reports an HTTP error", async () => {
    const client = createSupervisorClient({ socketPath, timeoutMs: 2000 });
    await assert.rejects(client.call("broken"), { code: "ACC_SUPERVISOR", message: /HTTP 500/ });
  });

  it("says acc is not booted when nothing listens on the socket", async () => {
    const missing = createSupervisorClient({
      socketPath: path.join(dir, "missing.sock"),
      timeoutMs: 2000,
    });
    await assert.rejects(missing.call("echo"), {
      code: "ACC_NOT_BOOTED",
      message: `acc's supervisord is not running (socket ${path.join(dir, "missing.sock")})`,
      hint: "run acc boot",
    });
    // A file left where the socket was: connecting is refused.
    const stale = path.join(dir, "stale.sock");
    await writeFile(stale, "");
    await assert.rejects(createSupervisorClient({ socketPath: stale }).call("echo"), {
      code: "ACC_NOT_BOOTED",
    });
  });
});
