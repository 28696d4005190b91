// A local ACME CA for a test: Debian's pebble (2.4.0) and its pebble-challtestsrv as the DNS
// server pebble's validation authority asks, each on free loopback ports, nothing outside.
import { spawn, type ChildProcess } from "node:child_process";
import { Resolver } from "node:dns/promises";
import { constants } from "node:fs";
import { access, mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import type { TestContext } from "node:test";
import { createTestCa } from "./certs.js";
import { freePort, makeTempDir, removeDir, requireBinary, waitFor } from "./common.js";

export interface TestPebbleOptions {
  /** Where pebble's validation authority sends HTTP-01 requests: acc's nginx HTTP port. */
  httpPort: number;
  /**
   * Lifetime of the certificates pebble issues, in seconds (pebble 2.4.0 has no environment
   * variable for it: the config's `certificateValidityPeriod`). Default: pebble's, 5 years.
   */
  certValiditySeconds?: number;
}

export interface TestPebble {
  /** The ACME directory, https://127.0.0.1:PORT/dir (served with a certificate for that IP). */
  directoryUrl: string;
  /** The test CA root that signed pebble's own HTTPS certificate: an ACME client must trust it. */
  caBundlePem: string;
  /** "127.0.0.1:PORT": challtestsrv's DNS server, the one pebble resolves names with. */
  dnsServer: string;
  /** pebble's management interface (HTTPS, same certificate): roots, intermediates. */
  managementUrl: string;
  /** Makes pebble resolve `host` to `ip` alone (127.0.0.1, or 192.0.2.1 for unreachable). */
  addA(host: string, ip: string): Promise<void>;
  /** Makes `host` resolve to nothing again. */
  removeA(host: string): Promise<void>;
  /**
   * The root and intermediate that sign what pebble issues now. pebble makes new ones at each
   * start, so a chain issued before stop()/start() does not lead to the new root.
   */
  issuingRoots(): Promise<{ root: string; intermediate: string }>;
  /** Stops pebble alone (a CA outage); the DNS server stays. */
  stop(): Promise<void>;
  /** Starts pebble again on the same ports (the CA is back, with a new root and no accounts). */
  start(): Promise<void>;
  /** What pebble and challtestsrv wrote so far. */
  log(): string;
  /** Stops both and removes the folder; fails if either died by itself. Also run by t.after. */
  cleanup(): Promise<void>;
}

async function onPath(name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "/usr/bin").split(":")) {
    try {
      await access(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

interface Answer {
  status: number;
  body: string;
}

/** GET or POST a URL: HTTPS trusting `ca` only, or plain HTTP. */
function fetchText(
  url: string,
  options: { ca?: string; method?: string; body?: string; timeoutMs?: number } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith("https:") ? https : http;
    const req = client.request(
      url,
      {
        method: options.method ?? "GET",
        agent: false,
        timeout: options.timeoutMs ?? 5_000,
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${url} timed out`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** One foreground process in its own group, its output kept, stopped by pid. */
interface Service {
  child: ChildProcess;
  /** Whether it exited without being asked to. */
  died(): boolean;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function spawnService(
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; keep: (chunk: Buffer) => void },
): Service {
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", options.keep);
  child.stderr?.on("data", options.keep);
  // A spawn error (ENOENT) shows as an exit; the readiness wait reports it with the log.
  child.on("error", (error) => options.keep(Buffer.from(`${file}: ${error.message}\n`)));
  let stopping = false;
  return {
    child,
    died: () => !stopping && exited(child),
    async stop() {
      if (stopping) return;
      stopping = true;
      const pid = child.pid;
      if (pid === undefined || exited(child)) return;
      process.kill(-pid, "SIGTERM");
      if (!(await waitExit(child, 10_000))) {
        process.kill(-pid, "SIGKILL");
        await waitExit(child, 5_000);
      }
    },
  };
}

/**
 * Starts challtestsrv, then pebble, for one test; registers cleanup() with t.after. Returns
 * undefined after t.skip when the binaries are missing (a failure under CI=true).
 */
export async function startTestPebble(
  t: TestContext,
  options: TestPebbleOptions,
): Promise<TestPebble | undefined> {
  const found = (await onPath("pebble")) && (await onPath("pebble-challtestsrv"));
  const skip = requireBinary(found, "pebble (Debian package pebble)");
  if (skip) {
    t.skip(skip);
    return undefined;
  }

  const dir = await makeTempDir("acc-pebble-");
  const output: string[] = [];
  let outputSize = 0;
  const keeper =
    (label: string) =>
    (chunk: Buffer): void => {
      const text = chunk.toString("utf8").replace(/^(?=.)/gm, `[${label}] `);
      output.push(text);
      outputSize += text.length;
      while (outputSize > 256 * 1024 && output.length > 1)
        outputSize -= output.shift()?.length ?? 0;
    };
  const log = (): string => output.join("");
  // pebble needs nothing from the environment; without it no proxy setting can apply.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

  // Set once spawned; cleanup is registered before, so a failed start still cleans up.
  const running: { challtestsrv?: Service; pebble?: Service } = {};
  let cleaned = false;
  async function cleanup(): Promise<void> {
    if (cleaned) return;
    cleaned = true;
    const died = [
      ...(running.challtestsrv?.died() === true ? ["pebble-challtestsrv"] : []),
      ...(running.pebble?.died() === true ? ["pebble"] : []),
    ];
    try {
      await running.pebble?.stop();
      await running.challtestsrv?.stop();
    } finally {
      await removeDir(dir);
    }
    if (died.length > 0) throw new Error(`${died.join(" and ")} died during the test:\n${log()}`);
  }
  t.after(cleanup);

  const caDir = path.join(dir, "ca");
  await mkdir(caDir);
  const ca = await createTestCa(caDir);
  const wfeCert = await ca.issue("pebble", ["127.0.0.1", "localhost"]);

  const dnsPort = await freePort();
  const challManagementPort = await freePort();
  const dnsServer = `127.0.0.1:${dnsPort}`;
  const challManagement = `http://127.0.0.1:${challManagementPort}`;
  running.challtestsrv = spawnService(
    "pebble-challtestsrv",
    [
      "-dns01",
      dnsServer,
      "-management",
      `127.0.0.1:${challManagementPort}`,
      "-http01",
      "",
      "-https01",
      "",
      "-tlsalpn01",
      "",
      // Names nobody added resolve to nothing (an empty answer), not to 127.0.0.1.
      "-defaultIPv4",
      "",
      "-defaultIPv6",
      "",
    ],
    { cwd: dir, env, keep: keeper("challtestsrv") },
  );
  const chall = running.challtestsrv;
  async function manage(endpoint: string, body: unknown): Promise<void> {
    const answer = await fetchText(`${challManagement}${endpoint}`, {
      method: "POST",
      body: JSON.stringify(body),
    });
    if (answer.status !== 200)
      throw new Error(`challtestsrv ${endpoint} answered ${answer.status}: ${answer.body}`);
  }
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([dnsServer]);
  await waitFor(
    "pebble-challtestsrv to answer",
    async () => {
      if (exited(chall.child)) throw new Error("pebble-challtestsrv exited at start");
      await manage("/clear-a", { host: "ready.invalid" });
      // An answer without records: the DNS server is up, and the default is off.
      const code = await resolver.resolve4("ready.invalid").then(
        () => "answered an address",
        (error: NodeJS.ErrnoException) => error.code,
      );
      if (code === "ENODATA") return true;
      throw new Error(`DNS query for ready.invalid: ${code}`);
    },
    15_000,
    50,
  ).catch((error: unknown) => {
    throw new Error(`pebble-challtestsrv did not start: ${String(error)}\n${log()}`, {
      cause: error,
    });
  });

  const listenPort = await freePort();
  const managementPort = await freePort();
  const tlsPort = await freePort();
  const configFile = path.join(dir, "pebble-config.json");
  await writeFile(
    configFile,
    `${JSON.stringify(
      {
        pebble: {
          listenAddress: `127.0.0.1:${listenPort}`,
          managementListenAddress: `127.0.0.1:${managementPort}`,
          certificate: wfeCert.cert,
          privateKey: wfeCert.key,
          httpPort: options.httpPort,
          tlsPort,
          ocspResponderURL: "",
          externalAccountBindingRequired: false,
          ...(options.certValiditySeconds !== undefined
            ? { certificateValidityPeriod: options.certValiditySeconds }
            : {}),
        },
      },
      null,
      2,
    )}\n`,
  );
  const pebbleEnv: NodeJS.ProcessEnv = {
    ...env,
    // No random sleep before validating, never a spurious badNonce, and every order gets fresh
    // authorizations (validated again), so a test sees what its own order did.
    PEBBLE_VA_NOSLEEP: "1",
    PEBBLE_WFE_NONCEREJECT: "0",
    PEBBLE_AUTHZREUSE: "0",
  };
  const directoryUrl = `https://127.0.0.1:${listenPort}/dir`;
  const managementUrl = `https://127.0.0.1:${managementPort}`;

  async function startPebble(): Promise<void> {
    if (running.pebble?.died() === true) throw new Error(`pebble had died:\n${log()}`);
    if (running.pebble !== undefined && !exited(running.pebble.child))
      throw new Error("pebble is already running");
    const service = spawnService("pebble", ["-config", configFile, "-dnsserver", dnsServer], {
      cwd: dir,
      env: pebbleEnv,
      keep: keeper("pebble"),
    });
    running.pebble = service;
    await waitFor(
      "pebble's ACME directory",
      async () => {
        if (exited(service.child)) throw new Error("pebble exited at start");
        const answer = await fetchText(directoryUrl, { ca: ca.rootPem, timeoutMs: 2_000 });
        return answer.status === 200 ? true : undefined;
      },
      15_000,
      50,
    ).catch((error: unknown) => {
      throw new Error(`pebble did not start: ${String(error)}\n${log()}`, { cause: error });
    });
  }
  await startPebble();

  async function managementPem(what: string): Promise<string> {
    const answer = await fetchText(`${managementUrl}/${what}/0`, { ca: ca.rootPem });
    if (answer.status !== 200 || !answer.body.includes("-----BEGIN CERTIFICATE-----"))
      throw new Error(`pebble's /${what}/0 answered ${answer.status}: ${answer.body}`);
    return answer.body;
  }

  return {
    directoryUrl,
    caBundlePem: ca.rootPem,
    dnsServer,
    managementUrl,
    async addA(host, ip) {
      // challtestsrv adds to a name's addresses: clear first, so the name has this one alone.
      await manage("/clear-a", { host });
      await manage("/add-a", { host, addresses: [ip] });
    },
    async removeA(host) {
      await manage("/clear-a", { host });
    },
    async issuingRoots() {
      return {
        root: await managementPem("roots"),
        intermediate: await managementPem("intermediates"),
      };
    },
    async stop() {
      const service = running.pebble;
      if (service === undefined) return;
      if (service.died()) throw new Error(`pebble had died before stop():\n${log()}`);
      await service.stop();
    },
    start: startPebble,
    log,
    cleanup,
  };
}
