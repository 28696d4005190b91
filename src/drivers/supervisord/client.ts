import { request } from "node:http";
import { AccError, hasErrno } from "../../lib/errors.js";
import { decodeResponse, encodeCall, type XmlRpcValue } from "./xmlrpc.js";

/** supervisord's fault codes (supervisor/xmlrpc.py, class Faults). */
export const FAULT = {
  UNKNOWN_METHOD: 1,
  INCORRECT_PARAMETERS: 2,
  BAD_ARGUMENTS: 3,
  SIGNATURE_UNSUPPORTED: 4,
  SHUTDOWN_STATE: 6,
  BAD_NAME: 10,
  BAD_SIGNAL: 11,
  NO_FILE: 20,
  NOT_EXECUTABLE: 21,
  FAILED: 30,
  ABNORMAL_TERMINATION: 40,
  SPAWN_ERROR: 50,
  ALREADY_STARTED: 60,
  NOT_RUNNING: 70,
  SUCCESS: 80,
  ALREADY_ADDED: 90,
  STILL_RUNNING: 91,
  CANT_REREAD: 92,
} as const;

/** An XML-RPC fault answered by supervisord: the call reached it and it said no. */
export class SupervisorFault extends Error {
  readonly faultCode: number;
  readonly faultString: string;

  constructor(method: string, faultCode: number, faultString: string) {
    super(`supervisord ${method}: ${faultString}`);
    this.name = "SupervisorFault";
    this.faultCode = faultCode;
    this.faultString = faultString;
  }
}

export function isFault(error: unknown, ...codes: number[]): error is SupervisorFault {
  return error instanceof SupervisorFault && codes.includes(error.faultCode);
}

export interface CallOptions {
  /** Overrides the client's timeout, for calls that wait on a process (stopProcess). */
  timeoutMs?: number;
}

export interface SupervisorClient {
  call(
    method: string,
    params?: readonly XmlRpcValue[],
    options?: CallOptions,
  ): Promise<XmlRpcValue>;
}

export interface SupervisorClientOptions {
  socketPath: string;
  /** Milliseconds for one call, from connect to the last byte of the answer. */
  timeoutMs?: number;
}

export function createSupervisorClient(opts: SupervisorClientOptions): SupervisorClient {
  const defaultTimeoutMs = opts.timeoutMs ?? 10_000;
  return {
    async call(method, params = [], options = {}) {
      const xml = await post(opts.socketPath, method, encodeCall(method, params), {
        timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
      });
      let response;
      try {
        response = decodeResponse(xml);
      } catch (error) {
        throw new Error(`cannot decode supervisord's answer to ${method}`, { cause: error });
      }
      if (!response.ok) throw new SupervisorFault(method, response.faultCode, response.faultString);
      return response.value;
    },
  };
}

function post(
  socketPath: string,
  method: string,
  body: string,
  { timeoutMs }: { timeoutMs: number },
): Promise<string> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(error);
    };
    const req = request(
      {
        socketPath,
        path: "/RPC2",
        method: "POST",
        // One connection per call: calls are few, and no idle socket outlives the caller.
        agent: false,
        headers: { "Content-Type": "text/xml", "Content-Length": Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (error) => fail(connectionError(socketPath, method, error)));
        res.on("end", () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) {
            reject(
              new AccError(
                "ACC_SUPERVISOR",
                `supervisord answered ${method} with HTTP ${res.statusCode}`,
                {
                  details: text.slice(0, 2000),
                },
              ),
            );
            return;
          }
          resolve(text);
        });
      },
    );
    const timer = setTimeout(() => {
      fail(
        new AccError(
          "ACC_SUPERVISOR",
          `supervisord did not answer ${method} within ${timeoutMs} ms`,
          {
            hint: `its log is next to its config; socket ${socketPath}`,
          },
        ),
      );
    }, timeoutMs);
    req.on("error", (error) => fail(connectionError(socketPath, method, error)));
    req.end(body);
  });
}

function connectionError(socketPath: string, method: string, error: Error): AccError {
  if (hasErrno(error, "ECONNREFUSED") || hasErrno(error, "ENOENT")) {
    return new AccError(
      "ACC_NOT_BOOTED",
      `acc's supervisord is not running (socket ${socketPath})`,
      {
        hint: "run acc boot",
        cause: error,
      },
    );
  }
  return new AccError(
    "ACC_SUPERVISOR",
    `cannot call supervisord ${method} on ${socketPath}: ${error.message}`,
    {
      cause: error,
    },
  );
}
