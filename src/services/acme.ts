// ACME certificates (acc.toml tls = "acme"): one account per home, one certificate per
// instance covering its hosts, HTTP-01 challenges answered by acc server through the permanent
// location /.well-known/acme-challenge/ of acc's nginx (no reload per challenge). Before any
// order, each host is checked to reach this server through its name (acme-check.ts), so that a
// host whose DNS is not ready costs nothing at the CA. Renewal runs in acc server
// (acme-renewal.ts).
import { randomBytes } from "node:crypto";
import { link, readFile, rm, stat } from "node:fs/promises";
import https from "node:https";
import { rootCertificates } from "node:tls";
import type { Client } from "acme-client";
import { certificateStatePath } from "../core/paths.js";
import { SETTLED_STATES } from "../core/states.js";
import { orderRefusal, recentOrders, type OrderRecord } from "../core/acme-limits.js";
import { hostCovered, wildcardName } from "../core/tls-hosts.js";
import { isValidInstanceName, reservedInstanceName } from "../core/validate.js";
import { certificatePath } from "../drivers/nginx/render.js";
import { checkCertificate, describeCertificate } from "../lib/certificates.js";
import { AccError, errorMessage } from "../lib/errors.js";
import {
  readDirIfExists,
  readFileIfExists,
  readJsonIfExists,
  writeFileAtomic,
} from "../lib/files.js";
import type { InstanceRecord } from "../store/store.js";
import { challengeFile, checkHostsReach, ensureAcmeDirs } from "./acme-check.js";
import type { AccContext } from "./context.js";
import { getInstance, lease, recordEvent, urlOf } from "./instances.js";
import { rewriteInstanceFiles } from "./instance-url.js";
import { TLS_OPERATION } from "./tls-url.js";

type AcmeModule = typeof import("acme-client");

/** What acc keeps of an instance's certificate and its renewal (HOME/acme/state/NAME.json). */
export interface CertificateState {
  source: "acme";
  /** The hosts of the last order that succeeded. */
  hosts: string[];
  issued_at?: string;
  /** Failed attempts since the last success. */
  failures: number;
  last_attempt?: string;
  /** No attempt before this (backoff after failures). */
  next_attempt?: string;
  last_error?: string;
}

/** A certificate's renewal: what `acc show`, `acc tls list` and `acc status` say of it. */
export interface CertificateStatus {
  source: "acme" | "manual" | "wildcard" | "none";
  not_after: string | null;
  failures: number;
  last_error: string | null;
  next_attempt: string | null;
  /** Set when something needs a look: repeated failures, or an expiry coming close. */
  warning: string | null;
}

/** After this many failed attempts in a row, list, show and status warn. */
export const WARN_AFTER_FAILURES = 3;
/** Backoff after failures: the check interval doubled each time, at most this. */
const MAX_BACKOFF_MS = 24 * 3600_000;

/**
 * What one process keeps across calls (in ctx.cache): the orders under way, one per instance;
 * the order book's and the warnings file's queues (read, change, write: one at a time); each
 * certificate's expiry while its file's mtime stays the same.
 */
export interface AcmeCache {
  inFlight: Map<string, Promise<IssueResult>>;
  orders: Promise<unknown>;
  warnings: Promise<unknown>;
  expiry: Map<string, { mtimeMs: number; seconds: number }>;
}

function acmeCache(ctx: AccContext): AcmeCache {
  ctx.cache.acme ??= {
    inFlight: new Map(),
    orders: Promise.resolve(),
    warnings: Promise.resolve(),
    expiry: new Map(),
  };
  return ctx.cache.acme;
}

// --- the account and the order ---

let loaded: Promise<AcmeModule> | undefined;

/** acme-client, loaded on first use only (the CLI's start-up never pays for it). */
async function acmeClientModule(ctx: AccContext): Promise<AcmeModule> {
  // A CommonJS module: its exports come as `default` too.
  loaded ??= import("acme-client").then((m) => (m as { default?: AcmeModule }).default ?? m);
  const acme = await loaded;
  const bundle = ctx.config.acme_ca_bundle;
  const extra = bundle === "" ? [] : [await readCaBundle(bundle)];
  acme.axios.defaults.httpsAgent = new https.Agent({ ca: [...rootCertificates, ...extra] });
  acme.axios.defaults.timeout = 30_000;
  // A CA that is down fails an attempt in seconds; acc's own backoff does the rest.
  const settings = (acme.axios.defaults as { acmeSettings?: Record<string, number> }).acmeSettings;
  if (settings) {
    settings.retryMaxAttempts = 2;
    settings.retryDefaultDelay = 1;
  }
  return acme;
}

async function readCaBundle(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    throw new AccError(
      "ACC_INVALID",
      `cannot read acme_ca_bundle ${file}: ${errorMessage(error)}`,
      {
        hint: "give the PEM file of the CA that signed the ACME server's own certificate",
      },
    );
  }
}

interface AccountFile {
  directory: string;
  url: string;
  email: string;
}

/** The home's account key: made once (0600), never replaced by a concurrent maker. */
async function accountKey(ctx: AccContext, acme: AcmeModule): Promise<string> {
  const existing = await readFileIfExists(ctx.paths.acmeAccountKey);
  if (existing !== undefined) return existing;
  const made = (await acme.crypto.createPrivateEcdsaKey()).toString();
  const temp = `${ctx.paths.acmeAccountKey}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFileAtomic(temp, made, { mode: 0o600 });
  try {
    await link(temp, ctx.paths.acmeAccountKey);
  } catch (error) {
    if (!(error instanceof Error && "code" in error && error.code === "EEXIST")) throw error;
  } finally {
    await rm(temp, { force: true });
  }
  return readFile(ctx.paths.acmeAccountKey, "utf8");
}

/**
 * A client for the home's account. The account is looked up by its key at each order (ACME's
 * newAccount answers the existing one): a CA that forgot it (a test CA restarted) gets it again.
 * account.json records what the CA answered, for the sysadmin.
 */
async function accountClient(ctx: AccContext, acme: AcmeModule): Promise<Client> {
  return new acme.Client({
    directoryUrl: ctx.config.acme_directory,
    accountKey: await accountKey(ctx, acme),
  });
}

async function recordAccount(ctx: AccContext, client: Client): Promise<void> {
  const file: AccountFile = {
    directory: ctx.config.acme_directory,
    url: client.getAccountUrl(),
    email: ctx.config.acme_email,
  };
  const text = `${JSON.stringify(file, null, 2)}\n`;
  if ((await readFileIfExists(ctx.paths.acmeAccount)) === text) return;
  await writeFileAtomic(ctx.paths.acmeAccount, text, { mode: 0o600 });
}

async function recordOrder(
  ctx: AccContext,
  hosts: readonly string[],
  renewal: boolean,
): Promise<void> {
  const cache = acmeCache(ctx);
  const run = cache.orders.then(async () => {
    const now = ctx.now().getTime();
    const orders = recentOrders(
      (await readJsonIfExists<OrderRecord[]>(ctx.paths.acmeOrders)) ?? [],
      now,
    );
    const refusal = orderRefusal(ctx.config.acme_directory, orders, hosts, renewal, now);
    if (refusal !== undefined) {
      throw new AccError("ACC_RATE_LIMITED", refusal, {
        hint: "acc tls list shows the certificates; the guard lets orders through as the week goes by",
      });
    }
    orders.push({ at: now, hosts: [...hosts], renewal });
    await writeFileAtomic(ctx.paths.acmeOrders, `${JSON.stringify(orders)}\n`, { mode: 0o600 });
  });
  cache.orders = run.catch(() => undefined);
  await run;
}

/** An order for `hosts`, its HTTP-01 challenges answered by acc server: the chain and its key. */
async function order(
  ctx: AccContext,
  hosts: readonly string[],
): Promise<{ cert: string; key: string }> {
  const acme = await acmeClientModule(ctx);
  const client = await accountClient(ctx, acme);
  const keyPem = (await acme.crypto.createPrivateEcdsaKey()).toString();
  // The common name is limited to 64 characters; the names that count are the altNames.
  const first = hosts[0]!;
  const [, csr] = await acme.crypto.createCsr(
    { ...(first.length <= 64 ? { commonName: first } : {}), altNames: [...hosts] },
    keyPem,
  );
  const email = ctx.config.acme_email;
  const cert = await client.auto({
    csr,
    termsOfServiceAgreed: true,
    ...(email === "" ? {} : { email }),
    challengePriority: ["http-01"],
    // checkHostsReach did it, through acc's real path; acme-client's own check fetches port 80.
    skipChallengeVerification: true,
    challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
      await writeFileAtomic(challengeFile(ctx, challenge.token), keyAuthorization, {
        mode: 0o600,
      });
    },
    challengeRemoveFn: async (_authz, challenge) => {
      await rm(challengeFile(ctx, challenge.token), { force: true });
    },
  });
  await recordAccount(ctx, client);
  return { cert, key: keyPem };
}

// --- an instance's certificate ---

export function readCertificateState(
  ctx: Pick<AccContext, "paths">,
  name: string,
): Promise<CertificateState | undefined> {
  return readJsonIfExists<CertificateState>(certificateStatePath(ctx.paths, name));
}

async function writeCertificateState(
  ctx: AccContext,
  name: string,
  state: CertificateState,
): Promise<void> {
  await writeFileAtomic(
    certificateStatePath(ctx.paths, name),
    `${JSON.stringify(state, null, 2)}\n`,
    {
      mode: 0o600,
    },
  );
}

/** The instance's own certificate as served: its names and dates, or undefined. */
async function ownCertificate(
  ctx: AccContext,
  name: string,
): Promise<{ names: string[]; notBefore: Date; notAfter: Date } | undefined> {
  const file = certificatePath(ctx.paths, name);
  const pem = await readFileIfExists(file);
  return pem === undefined ? undefined : describeCertificate(pem, file);
}

function wildcardCovers(ctx: AccContext, hosts: readonly string[], haveWildcard: boolean): boolean {
  return (
    haveWildcard && hosts.every((host) => hostCovered([wildcardName(ctx.config.domain)], host))
  );
}

/** Why `name` (with `hosts`) needs an order now, from its certificate and state on disk. */
async function reasonToOrder(
  ctx: AccContext,
  name: string,
  hosts: readonly string[],
  haveWildcard: boolean,
  state: CertificateState | undefined,
): Promise<string | undefined> {
  const own = await ownCertificate(ctx, name).catch(() => undefined);
  return renewalReason(own, state, hosts, wildcardCovers(ctx, hosts, haveWildcard), ctx.now());
}

async function haveWildcard(ctx: AccContext): Promise<boolean> {
  return (await readFileIfExists(ctx.paths.tlsWildcardCert)) !== undefined;
}

/** Why the instance needs an order now, or undefined (see README "TLS"). */
export function renewalReason(
  own: { names: string[]; notBefore: Date; notAfter: Date } | undefined,
  state: CertificateState | undefined,
  hosts: readonly string[],
  coveredByWildcard: boolean,
  now: Date,
): string | undefined {
  if (own !== undefined && state === undefined) return undefined; // imported by hand
  if (own === undefined) return coveredByWildcard ? undefined : "it has no certificate yet";
  const missing = hosts.filter((host) => !hostCovered(own.names, host));
  if (missing.length > 0) return `its certificate does not cover ${missing.join(", ")}`;
  const lifetime = own.notAfter.getTime() - own.notBefore.getTime();
  const renewAt = own.notBefore.getTime() + (lifetime * 2) / 3;
  if (now.getTime() >= renewAt) {
    return `its certificate is past two thirds of its lifetime (expires ${own.notAfter.toISOString()})`;
  }
  return undefined;
}

/** What needs a look about a certificate, or null. */
export function certificateWarning(
  own: { notBefore: Date; notAfter: Date } | undefined,
  state: CertificateState | undefined,
  now: Date,
): string | null {
  const failures = state?.failures ?? 0;
  const expires = own === undefined ? "" : `; it expires ${own.notAfter.toISOString()}`;
  if (failures >= WARN_AFTER_FAILURES) {
    return `certificate renewal failed ${failures} times (last: ${state?.last_error ?? "?"})${
      own === undefined ? "; no certificate yet" : expires
    }`;
  }
  if (own === undefined) return null;
  const lifetime = own.notAfter.getTime() - own.notBefore.getTime();
  const left = own.notAfter.getTime() - now.getTime();
  if (left <= 0) return `certificate expired on ${own.notAfter.toISOString()}`;
  // Renewal starts at two thirds; a sixth left means several checks have not renewed it.
  if (left < lifetime / 6) return `certificate expires ${own.notAfter.toISOString()}`;
  return null;
}

export async function certificateStatus(
  ctx: AccContext,
  instance: Pick<InstanceRecord, "name" | "hosts">,
): Promise<CertificateStatus> {
  const own = await ownCertificate(ctx, instance.name).catch(() => undefined);
  const state = await readCertificateState(ctx, instance.name);
  const now = ctx.now();
  let source: CertificateStatus["source"] = "none";
  let notAfter: string | null = null;
  if (own !== undefined) {
    source = state === undefined ? "manual" : "acme";
    notAfter = own.notAfter.toISOString();
  } else {
    const wildcard = await readFileIfExists(ctx.paths.tlsWildcardCert);
    if (wildcard !== undefined && wildcardCovers(ctx, instance.hosts, true)) {
      source = "wildcard";
      notAfter = describeCertificate(wildcard, ctx.paths.tlsWildcardCert).notAfter.toISOString();
    }
  }
  return {
    source,
    not_after: notAfter,
    failures: state?.failures ?? 0,
    last_error: state?.last_error ?? null,
    next_attempt: state?.next_attempt ?? null,
    warning: certificateWarning(own, state, now),
  };
}

export interface IssueResult {
  name: string;
  hosts: string[];
  not_after: string;
  /** The instance's URL changed (its first certificate): its env is rewritten. */
  url_changed: boolean;
}

/**
 * Orders a certificate for the instance's hosts and serves it. One at a time per instance in
 * this process (acc server runs them all: it answers the challenges). The order runs outside
 * the instance's lease, so a wake never waits for the CA; the lease is taken to put it in place.
 * A failure is an event, counted for the backoff, and the old certificate keeps serving.
 */
export function issueCertificate(
  ctx: AccContext,
  name: string,
  options: { cause: string; skipCheck?: boolean; reason?: string },
): Promise<IssueResult> {
  const { inFlight } = acmeCache(ctx);
  const running = inFlight.get(name);
  if (running) return running;
  const attempt = issueOnce(ctx, name, options).finally(() => inFlight.delete(name));
  inFlight.set(name, attempt);
  return attempt;
}

function assertAcme(ctx: AccContext): void {
  if (ctx.config.tls !== "acme") {
    throw new AccError("ACC_INVALID", `tls is ${ctx.config.tls} in acc.toml, not acme`, {
      hint: 'set tls = "acme" in acc.toml (and acme_email), then acc boot',
    });
  }
}

/**
 * The name acc's admin host's certificate goes by (HOME/tls/instances/NAME.crt, its events,
 * `acc tls issue NAME`): the admin host's first label, which no instance may take.
 */
export function adminCertificateName(ctx: Pick<AccContext, "config">): string {
  return reservedInstanceName(ctx.config.admin_host);
}

/** What a certificate is for: an instance (its hosts), or acc's admin host. */
export interface Target {
  name: string;
  hosts: string[];
  instance?: InstanceRecord;
}

export async function targetOf(ctx: AccContext, name: string): Promise<Target> {
  if (name === adminCertificateName(ctx)) return { name, hosts: [ctx.config.admin_host] };
  const instance = await getInstance(ctx, name);
  return { name, hosts: [...instance.hosts], instance };
}

/** An event of the target: the instance's, or acc's own (no instance) for the admin host. */
export async function targetEvent(
  ctx: AccContext,
  target: Target,
  outcome: "ok" | "failed",
  extra: { cause: string; durationMs: number; message: string },
): Promise<void> {
  if (target.instance) {
    await recordEvent(ctx, target.name, TLS_OPERATION, outcome, extra);
    return;
  }
  await ctx.store.addEvent(
    {
      instance: null,
      action: TLS_OPERATION,
      outcome,
      cause: extra.cause,
      durationMs: extra.durationMs,
      message: `admin host ${ctx.config.admin_host}: ${extra.message}`,
    },
    ctx.now().toISOString(),
  );
}

async function issueOnce(
  ctx: AccContext,
  name: string,
  options: { cause: string; skipCheck?: boolean; reason?: string },
): Promise<IssueResult> {
  assertAcme(ctx);
  const target = await targetOf(ctx, name);
  const { hosts } = target;
  const before = await readCertificateState(ctx, name);
  const own = await ownCertificate(ctx, name).catch(() => undefined);
  const renewal =
    own !== undefined &&
    own.names.length === hosts.length &&
    hosts.every((host) => own.names.includes(host));
  const started = Date.now();
  const what = renewal ? "renewal" : "certificate";
  try {
    await ensureAcmeDirs(ctx);
    if (options.skipCheck !== true) await checkHostsReach(ctx, hosts);
    await recordOrder(ctx, hosts, renewal);
    const { cert, key } = await order(ctx, hosts);
    return await lease(ctx, name, TLS_OPERATION, async () => {
      const current = target.instance ? await getInstance(ctx, name) : undefined;
      const checked = checkCertificate({
        cert,
        key,
        certFile: "the CA's certificate",
        keyFile: "its key",
        hosts,
        now: ctx.now(),
      });
      const urlBefore = current ? urlOf(ctx, current) : undefined;
      await ctx.proxy.applyCertificate({
        name,
        files: { cert: checked.chainPem, key: checked.keyPem },
        hosts: current?.hosts ?? hosts,
      });
      await writeCertificateState(ctx, name, {
        source: "acme",
        hosts,
        issued_at: ctx.now().toISOString(),
        failures: 0,
        last_attempt: ctx.now().toISOString(),
      });
      await setWarning(ctx, name, null);
      const changed = current !== undefined && urlOf(ctx, current) !== urlBefore;
      if (changed) await rewriteInstanceFiles(ctx, current);
      await targetEvent(ctx, target, "ok", {
        cause: options.cause,
        durationMs: Date.now() - started,
        message: `${what} from ${ctx.config.acme_directory} for ${checked.names.join(", ")}, valid until ${checked.notAfter.toISOString()}${options.reason ? ` (${options.reason})` : ""}`,
      });
      return {
        name,
        hosts: checked.names,
        not_after: checked.notAfter.toISOString(),
        url_changed: changed,
      };
    });
  } catch (error) {
    if (error instanceof AccError && (error.code === "ACC_BUSY" || error.code === "ACC_NOT_FOUND"))
      throw error;
    const failures = (before?.failures ?? 0) + 1;
    const backoff = Math.min(ctx.config.tls_check_interval * 2 ** (failures - 1), MAX_BACKOFF_MS);
    const now = ctx.now();
    const state: CertificateState = {
      source: "acme",
      hosts: before?.hosts ?? [],
      ...(before?.issued_at !== undefined ? { issued_at: before.issued_at } : {}),
      failures,
      last_attempt: now.toISOString(),
      next_attempt: new Date(now.getTime() + backoff).toISOString(),
      last_error: errorMessage(error).slice(0, 500),
    };
    await writeCertificateState(ctx, name, state).catch(() => undefined);
    await setWarning(ctx, name, certificateWarning(own, state, now)).catch(() => undefined);
    await targetEvent(ctx, target, "failed", {
      cause: options.cause,
      durationMs: Date.now() - started,
      message: `${what} failed (attempt ${failures}, next after ${new Date(now.getTime() + backoff).toISOString()}${own ? `; the certificate valid until ${own.notAfter.toISOString()} keeps serving` : ""}): ${errorMessage(error)}`,
    });
    if (error instanceof AccError) throw error;
    throw new AccError("ACC_FAILED", `${name}: ${what} failed: ${errorMessage(error)}`, {
      hint: `acc events ${name} shows each attempt; acc server retries with a backoff`,
    });
  }
}

/**
 * After a create or a host change under tls = "acme": a certificate for the instance's hosts,
 * or the reason it has none yet (acc server retries). Never throws: the instance is made.
 */
export async function certificateAfterChange(
  ctx: AccContext,
  name: string,
  cause: string,
): Promise<{ issued: boolean; message: string } | undefined> {
  if (ctx.config.tls !== "acme") return undefined;
  const instance = await getInstance(ctx, name);
  const reason = await reasonToOrder(
    ctx,
    name,
    instance.hosts,
    await haveWildcard(ctx),
    await readCertificateState(ctx, name),
  );
  if (reason === undefined) return undefined;
  try {
    const result = await issueCertificate(ctx, name, { cause, reason });
    return { issued: true, message: `certificate valid until ${result.not_after}` };
  } catch (error) {
    return {
      issued: false,
      message: `no certificate yet: ${errorMessage(error)} (acc server retries; acc tls issue ${name} to try now)`,
    };
  }
}

/** The instances acc server should order for now, each with its reason. */
export async function dueCertificates(
  ctx: AccContext,
): Promise<{ name: string; reason: string }[]> {
  if (ctx.config.tls !== "acme") return [];
  const wildcard = await haveWildcard(ctx);
  const now = ctx.now();
  const due: { name: string; reason: string }[] = [];
  const targets = [
    { name: adminCertificateName(ctx), hosts: [ctx.config.admin_host] },
    ...(await ctx.store.listInstances())
      // One being created (not yet in nginx) or destroyed: its own operation sees to it.
      .filter((instance) => SETTLED_STATES.has(instance.state)),
  ];
  for (const { name, hosts } of targets) {
    const state = await readCertificateState(ctx, name);
    if (state?.next_attempt !== undefined && new Date(state.next_attempt) > now) continue;
    const reason = await reasonToOrder(ctx, name, hosts, wildcard, state);
    if (reason !== undefined) due.push({ name, reason });
  }
  return due;
}

// --- warnings: one file that acc list and acc status read, kept by the attempts and passes ---

/** The instances whose certificate needs a look, with what: one file read for a whole list. */
export async function certificateWarnings(
  ctx: Pick<AccContext, "paths">,
): Promise<Record<string, string>> {
  return (await readJsonIfExists<Record<string, string>>(ctx.paths.acmeWarnings)) ?? {};
}

function changeWarnings(
  ctx: AccContext,
  change: (warnings: Record<string, string>) => Record<string, string>,
): Promise<void> {
  const cache = acmeCache(ctx);
  const run = cache.warnings.then(async () => {
    await ensureAcmeDirs(ctx);
    const next = change(await certificateWarnings(ctx));
    await writeFileAtomic(ctx.paths.acmeWarnings, `${JSON.stringify(next, null, 2)}\n`, {
      mode: 0o600,
    });
  });
  cache.warnings = run.catch(() => undefined);
  return run;
}

async function setWarning(ctx: AccContext, name: string, warning: string | null): Promise<void> {
  await changeWarnings(ctx, (warnings) => {
    const next = { ...warnings };
    if (warning === null) delete next[name];
    else next[name] = warning;
    return next;
  });
}

/** Every instance's warning again (an expiry comes closer with time): each renewal pass. */
export async function refreshWarnings(ctx: AccContext): Promise<Record<string, string>> {
  const fresh: Record<string, string> = {};
  const now = ctx.now();
  const names = [
    adminCertificateName(ctx),
    ...(await ctx.store.listInstances()).map((instance) => instance.name),
  ];
  for (const name of names) {
    const own = await ownCertificate(ctx, name).catch(() => undefined);
    const state = await readCertificateState(ctx, name);
    const warning = certificateWarning(own, state, now);
    if (warning !== null) fresh[name] = warning;
  }
  await changeWarnings(ctx, () => fresh);
  return fresh;
}

/**
 * Every instance's own certificate expiry (seconds since the epoch), for the metric: a stat per
 * file, and a parse only for a file that changed since the last scrape.
 */
export async function certificateExpiries(ctx: AccContext): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const seen = new Set<string>();
  const expiryCache = acmeCache(ctx).expiry;
  for (const file of await readDirIfExists(ctx.paths.tlsInstances)) {
    if (!file.endsWith(".crt")) continue;
    const name = file.slice(0, -4);
    if (!isValidInstanceName(name)) continue;
    const full = certificatePath(ctx.paths, name);
    seen.add(full);
    const info = await stat(full).catch(() => undefined);
    if (!info) continue;
    let cached = expiryCache.get(full);
    if (cached?.mtimeMs !== info.mtimeMs) {
      const own = await ownCertificate(ctx, name).catch(() => undefined);
      if (!own) continue;
      cached = { mtimeMs: info.mtimeMs, seconds: Math.floor(own.notAfter.getTime() / 1000) };
      expiryCache.set(full, cached);
    }
    out.set(name, cached.seconds);
  }
  for (const key of expiryCache.keys()) if (!seen.has(key)) expiryCache.delete(key);
  return out;
}
