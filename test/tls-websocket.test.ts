// Websockets over HTTPS (tls = "manual"): an upgrade through acc's nginx reaches the instance
// and echoes, whether the instance runs or the upgrade itself has to wake it.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { cp } from "node:fs/promises";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import path from "node:path";
import { test } from "node:test";
import {
  createAccHome,
  tlsHomeEnv,
  httpRequest,
  logDiagnostics,
  type AccHome,
} from "./harness/acc.js";
import { createTestCa } from "./harness/certs.js";
import { freePort, makeTempDir, removeDir } from "./harness/common.js";

const here = import.meta.dirname;
const ECHO_MODEL = path.resolve(here, "../../test/fixtures/models/echo");
const DOMAIN = "pb-ws.test";
const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

interface WebsocketAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The first frame the server sent after the 101: its opcode, whether masked, its text. */
  frame?: { fin: boolean; opcode: number; masked: boolean; text: string };
  /** Whether Sec-WebSocket-Accept answered our key, as a client checks it. */
  acceptOk?: boolean;
}

/** A client's text frame: final, masked (RFC 6455 5.3: a client masks every frame). */
function clientFrame(opcode: number, text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length >= 126) throw new Error("short frames only");
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] ?? 0)));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]);
}

/**
 * A websocket handshake over HTTPS to acc's nginx (the chain and the name checked against the
 * test CA), as a browser's client does it; on a 101, sends one text frame and reads the first
 * frame back.
 */
function websocket(
  port: number,
  host: string,
  ca: string,
  text: string,
  headers: Record<string, string> = {},
): Promise<WebsocketAnswer> {
  const key = randomBytes(16).toString("base64");
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1",
      port,
      servername: host,
      ca,
      path: "/socket",
      headers: {
        host: `${host}:${port}`,
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-key": key,
        "sec-websocket-version": "13",
        ...headers,
      },
      agent: false,
      timeout: 60_000,
    });
    req.on("upgrade", (res: IncomingMessage, socket: Socket, head: Buffer) => {
      const accept = createHash("sha1").update(`${key}${WEBSOCKET_GUID}`).digest("base64");
      let received = head;
      const done = (frame?: WebsocketAnswer["frame"]): void => {
        socket.destroy();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          acceptOk: res.headers["sec-websocket-accept"] === accept,
          ...(frame ? { frame } : {}),
        });
      };
      const tryFrame = (): void => {
        if (received.length < 2) return;
        const length = (received[1] ?? 0) & 0x7f;
        const masked = ((received[1] ?? 0) & 0x80) !== 0;
        const start = 2 + (masked ? 4 : 0);
        if (length >= 126) return done({ fin: false, opcode: -1, masked, text: "(long frame)" });
        if (received.length < start + length) return;
        done({
          fin: ((received[0] ?? 0) & 0x80) !== 0,
          opcode: (received[0] ?? 0) & 0x0f,
          masked,
          text: received.subarray(start, start + length).toString("utf8"),
        });
      };
      socket.on("data", (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        tryFrame();
      });
      socket.on("error", reject);
      socket.on("end", () => done());
      socket.write(clientFrame(0x1, text));
      tryFrame();
    });
    req.on("response", (res: IncomingMessage) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("timeout", () => req.destroy(new Error(`websocket to ${host} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

interface EventJson {
  action: string;
  cause: string | null;
  outcome: string;
}

async function wakes(acc: AccHome, name: string): Promise<number> {
  const events = JSON.parse(await acc.ok(["events", name, "-n", "1000", "--json"])) as EventJson[];
  return events.filter((e) => e.action === "start" && e.cause === "wake" && e.outcome === "ok")
    .length;
}

async function state(acc: AccHome, name: string): Promise<string> {
  return (JSON.parse(await acc.ok(["show", name, "--json"])) as { state: string }).state;
}

test(
  "tls manual: a websocket over HTTPS reaches a running instance and wakes a stopped one",
  { timeout: 300_000 },
  async (t) => {
    const httpsPort = await freePort();
    const acc = await createAccHome({
      env: tlsHomeEnv({ domain: DOMAIN, httpsPort, tls: "manual", redirect: true }),
    });
    t.after(async () => {
      // nginx's and acc server's own words, when a handshake, a reload or a wake failed.
      await logDiagnostics(t, acc.home, [
        ["nginx/logs/error.log", /\[(emerg|crit)\]/],
        ["supervisor/logs/acc-server.log", /upgrade failed|wake of .* failed|internal error/],
      ]);
      await acc.cleanup();
    });
    const certDir = await makeTempDir("acc-tls-certs-");
    t.after(() => removeDir(certDir));
    const ca = await createTestCa(certDir);
    await cp(ECHO_MODEL, path.join(acc.home, "models/echo"), { recursive: true });
    await acc.ok(["boot"]);
    await acc.ok(["create", "echo", "--name", "pbws1", "--no-start"]);
    const host = `pbws1.${DOMAIN}`;
    const cert = await ca.issue("pbws1", [host]);
    await acc.ok(["tls", "import", "--cert", cert.cert, "--key", cert.key, "--for", "pbws1"]);
    assert.equal(await state(acc, "pbws1"), "stopped");

    const expectEcho = (answer: WebsocketAnswer, text: string): void => {
      assert.equal(answer.status, 101);
      assert.equal(answer.headers.upgrade?.toLowerCase(), "websocket");
      assert.equal(
        answer.acceptOk,
        true,
        `Sec-WebSocket-Accept: ${answer.headers["sec-websocket-accept"]}`,
      );
      assert.equal(answer.headers["x-echo-instance"], "pbws1");
      // The server's frame: final, text, unmasked, our text.
      assert.deepEqual(answer.frame, { fin: true, opcode: 1, masked: false, text });
    };

    await t.test("stopped: the upgrade itself wakes the instance and is served", async () => {
      const answer = await websocket(httpsPort, host, ca.rootPem, "hello while asleep", {
        "user-agent": "Mozilla/5.0",
      });
      expectEcho(answer, "hello while asleep");
      assert.equal(await wakes(acc, "pbws1"), 1);
      assert.equal(await state(acc, "pbws1"), "running");
    });

    await t.test("running: the upgrade goes through, no start", async () => {
      const answer = await websocket(httpsPort, host, ca.rootPem, "hello awake", {
        "user-agent": "Mozilla/5.0",
      });
      expectEcho(answer, "hello awake");
      assert.equal(await wakes(acc, "pbws1"), 1);
    });

    await t.test("stopped again, a client without a User-Agent wakes it too", async () => {
      await acc.ok(["stop", "pbws1"]);
      assert.equal(await state(acc, "pbws1"), "stopped");
      const answer = await websocket(httpsPort, host, ca.rootPem, "hello from a script");
      expectEcho(answer, "hello from a script");
      assert.equal(await wakes(acc, "pbws1"), 2);
    });

    await t.test("over HTTP, the upgrade is redirected to HTTPS like any request", async () => {
      const answer = await httpRequest(acc.httpPort, host, {
        path: "/socket",
        headers: { connection: "Upgrade", upgrade: "websocket" },
      });
      assert.equal(answer.status, 301);
      assert.equal(answer.headers.location, `https://${host}:${httpsPort}/socket`);
    });
  },
);
