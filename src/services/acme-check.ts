// The CA's HTTP-01 challenges and acc's own check before an order: files under
// HOME/acme/challenges that acc server answers at /.well-known/acme-challenge/TOKEN (for every
// host, through acc's nginx), and the probe that fetches a random one through each host name.
import { randomBytes } from "node:crypto";
import { Resolver, lookup } from "node:dns/promises";
import { rm, stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { AccError, errorMessage } from "../lib/errors.js";
import {
  ensureOwnedDir,
  readDirIfExists,
  readFileIfExists,
  writeFileAtomic,
} from "../lib/files.js";
import type { AccContext } from "./context.js";

/** The reachability check's wait for each host. */
const CHECK_TIMEOUT_MS = 5000;
const TOKEN_RE = /^[A-Za-z0-9_-]{1,256}$/;

export function challengeFile(ctx: AccContext, token: string): string {
  if (!TOKEN_RE.test(token)) throw new Error(`bad ACME token ${JSON.stringify(token)}`);
  return path.join(ctx.paths.acmeChallenges, token);
}

export async function ensureAcmeDirs(ctx: AccContext): Promise<void> {
  await ensureOwnedDir(ctx.paths.acme, 0o700);
  await ensureOwnedDir(ctx.paths.acmeChallenges, 0o700);
  await ensureOwnedDir(ctx.paths.acmeState, 0o700);
}

/**
 * What acc server answers at /.well-known/acme-challenge/TOKEN (any host), or undefined: 404.
 * The token comes from the network: only base64url characters reach the file system.
 */
export async function challengeAnswer(
  ctx: Pick<AccContext, "paths">,
  token: string,
): Promise<string | undefined> {
  if (!TOKEN_RE.test(token)) return undefined;
  return readFileIfExists(path.join(ctx.paths.acmeChallenges, token));
}

async function withChallenge<T>(
  ctx: AccContext,
  token: string,
  content: string,
  fn: () => Promise<T>,
): Promise<T> {
  const file = challengeFile(ctx, token);
  await writeFileAtomic(file, content, { mode: 0o600 });
  try {
    return await fn();
  } finally {
    await rm(file, { force: true });
  }
}

/** Challenges left by a process killed during an order (a live order takes seconds). */
export async function removeStaleChallenges(
  ctx: AccContext,
  olderThanMs = 3600_000,
): Promise<void> {
  const now = Date.now();
  for (const token of await readDirIfExists(ctx.paths.acmeChallenges)) {
    if (!TOKEN_RE.test(token)) continue;
    const file = path.join(ctx.paths.acmeChallenges, token);
    const info = await stat(file).catch(() => undefined);
    if (info && now - info.mtimeMs > olderThanMs) await rm(file, { force: true });
  }
}

/** The addresses a host resolves to, as the CA would see them (acme_resolver, else the system). */
async function addressesOf(ctx: AccContext, host: string): Promise<string[]> {
  const server = ctx.config.acme_resolver;
  if (server === "") {
    const found = await lookup(host, { all: true, verbatim: true }).catch(() => []);
    return found.map((entry) => entry.address);
  }
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([server]);
  const [v4, v6] = await Promise.all([
    resolver.resolve4(host).catch(() => [] as string[]),
    resolver.resolve6(host).catch(() => [] as string[]),
  ]);
  return [...v4, ...v6];
}

/** GET http://ADDRESS:http_port/.well-known/acme-challenge/TOKEN with Host: host; its body. */
function fetchProbe(
  address: string,
  port: number,
  host: string,
  token: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: address,
        port,
        path: `/.well-known/acme-challenge/${token}`,
        headers: { host: port === 80 ? host : `${host}:${port}`, "user-agent": "acc-acme-check" },
        timeout: CHECK_TIMEOUT_MS,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (body.length < 4096) body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)));
    req.on("error", reject);
  });
}

/**
 * Each host must reach this server through its name: a random token is served at the
 * challenge path, then fetched from the addresses the host resolves to, in turn until one
 * answers with it, on http_port as the CA does. Resolves with nothing, or throws ACC_INVALID naming each host that does not and why.
 */
export async function checkHostsReach(ctx: AccContext, hosts: readonly string[]): Promise<void> {
  await ensureAcmeDirs(ctx);
  const token = `acc-check-${randomBytes(12).toString("hex")}`;
  const content = randomBytes(24).toString("base64url");
  const port = ctx.config.http_port;
  const problems = await withChallenge(ctx, token, content, () =>
    Promise.all(
      hosts.map(async (host): Promise<string | undefined> => {
        const addresses = await addressesOf(ctx, host);
        if (addresses.length === 0) return `${host} does not resolve (no A or AAAA record)`;
        const failures: string[] = [];
        for (const address of addresses) {
          try {
            const answer = await fetchProbe(address, port, host, token);
            if (answer.status === 200 && answer.body.trim() === content) return undefined;
            failures.push(`${address}:${port} answered ${answer.status} without acc's token`);
          } catch (error) {
            failures.push(`${address}:${port}: ${errorMessage(error)}`);
          }
        }
        return `${host} does not reach this server (${failures.join("; ")})`;
      }),
    ),
  );
  const bad = problems.filter((problem): problem is string => problem !== undefined);
  if (bad.length > 0) {
    throw new AccError("ACC_INVALID", bad.join("; "), {
      hint: `point each host's DNS at this server, with port ${port} open to the internet, then try again (no order was made)`,
    });
  }
}
