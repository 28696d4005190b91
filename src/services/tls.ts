// Manual certificates (acc tls import, acc tls list): checked before use, stored under
// HOME/tls (root's, readable by nginx's workers only), served by acc's nginx when acc.toml's
// tls is not off.
import { readFile } from "node:fs/promises";
import { parseEnvFile } from "../core/instance-env.js";
import { instancePaths } from "../core/paths.js";
import { wildcardName } from "../core/tls-hosts.js";
import { isValidInstanceName } from "../core/validate.js";
import { certificatePath } from "../drivers/nginx/render.js";
import { checkCertificate, describeCertificate } from "../lib/certificates.js";
import { AccError } from "../lib/errors.js";
import { readDirIfExists, readFileIfExists } from "../lib/files.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { dataOwner } from "./instance-data.js";
import { writeInstanceFiles } from "./instance-files.js";
import { getInstance, lease, recordEvent, urlOf } from "./instances.js";
import { codeDirOf, instanceManifest } from "./model-code.js";

/** Operations on an instance's certificate hold its lease under this name. */
export const TLS_OPERATION = "tls";

/** What the instance's env file keeps from its database across a rewrite. */
const DATABASE_ENV = ["DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"];

export interface ImportRequest {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
  /** The instance; undefined with `wildcard`. */
  name?: string;
  wildcard?: boolean;
  cause: string;
}

export interface CertificateInfo {
  /** The instance, or "*" for the wildcard. */
  for: string;
  hosts: string[];
  not_after: string;
  source: "manual";
}

export interface ImportResult extends CertificateInfo {
  warnings: string[];
  /** Instances whose URL (ACC_URL) changed: their env is rewritten, read at their next start. */
  url_changed: string[];
}

function assertTlsOn(ctx: AccContext): void {
  if (ctx.config.tls === "off") {
    throw new AccError("ACC_INVALID", "tls is off in acc.toml: no certificate would be served", {
      hint: 'set tls = "manual" in acc.toml, then acc boot',
    });
  }
}

export async function importCertificate(
  ctx: AccContext,
  request: ImportRequest,
): Promise<ImportResult> {
  assertTlsOn(ctx);
  const { name } = request;
  if (request.wildcard === true) {
    if (name !== undefined) {
      throw new AccError("ACC_USAGE", "--for and --wildcard exclude each other", {
        hint: "a certificate is either one instance's or the wildcard",
      });
    }
    return importWildcard(ctx, request);
  }
  if (name === undefined) {
    throw new AccError("ACC_USAGE", "acc tls import needs --for NAME or --wildcard", {
      hint: "--for NAME: that instance's hosts; --wildcard: *.<domain>, every NAME.<domain>",
    });
  }
  await getInstance(ctx, name);
  return lease(ctx, name, TLS_OPERATION, async () => {
    const instance = await getInstance(ctx, name);
    const checked = checkCertificate({
      cert: request.cert,
      key: request.key,
      certFile: request.certFile,
      keyFile: request.keyFile,
      hosts: instance.hosts,
      now: ctx.now(),
    });
    const urlBefore = urlOf(ctx, instance);
    const started = Date.now();
    await ctx.proxy.applyCertificate({
      name,
      files: { cert: checked.chainPem, key: checked.keyPem },
      hosts: instance.hosts,
    });
    const changed = urlOf(ctx, instance) !== urlBefore;
    if (changed) await rewriteInstanceFiles(ctx, instance);
    await recordEvent(ctx, name, TLS_OPERATION, "ok", {
      cause: request.cause,
      durationMs: Date.now() - started,
      message: `certificate imported for ${checked.names.join(", ")}, valid until ${checked.notAfter.toISOString()}`,
    });
    return {
      for: name,
      hosts: checked.names,
      not_after: checked.notAfter.toISOString(),
      source: "manual",
      warnings: checked.warnings,
      url_changed: changed ? [name] : [],
    };
  });
}

async function importWildcard(ctx: AccContext, request: ImportRequest): Promise<ImportResult> {
  const checked = checkCertificate({
    cert: request.cert,
    key: request.key,
    certFile: request.certFile,
    keyFile: request.keyFile,
    hosts: [wildcardName(ctx.config.domain)],
    now: ctx.now(),
  });
  const instances = await ctx.store.listInstances();
  const before = new Map(instances.map((i) => [i.name, urlOf(ctx, i)]));
  await ctx.proxy.applyCertificate({
    files: { cert: checked.chainPem, key: checked.keyPem },
    hosts: [],
  });
  const changed: string[] = [];
  for (const instance of instances) {
    if (urlOf(ctx, instance) === before.get(instance.name)) continue;
    await lease(ctx, instance.name, TLS_OPERATION, async () => {
      const current = await ctx.store.getInstance(instance.name);
      if (current) await rewriteInstanceFiles(ctx, current);
    });
    changed.push(instance.name);
  }
  return {
    for: "*",
    hosts: checked.names,
    not_after: checked.notAfter.toISOString(),
    source: "manual",
    warnings: checked.warnings,
    url_changed: changed,
  };
}

/** Every stored certificate: the instances' own, then the wildcard. */
export async function listCertificates(ctx: AccContext): Promise<CertificateInfo[]> {
  const out: CertificateInfo[] = [];
  const names = (await readDirIfExists(ctx.paths.tlsInstances))
    .filter((file) => file.endsWith(".crt"))
    .map((file) => file.slice(0, -4))
    .filter(isValidInstanceName)
    .sort();
  for (const name of names) {
    const file = certificatePath(ctx.paths, name);
    const pem = await readFileIfExists(file);
    if (pem === undefined) continue;
    out.push(info(name, pem, file));
  }
  const wildcard = await readFileIfExists(ctx.paths.tlsWildcardCert);
  if (wildcard !== undefined) out.push(info("*", wildcard, ctx.paths.tlsWildcardCert));
  return out;
}

function info(name: string, pem: string, file: string): CertificateInfo {
  const { names, notAfter } = describeCertificate(pem, file);
  return { for: name, hosts: names, not_after: notAfter.toISOString(), source: "manual" };
}

/**
 * Writes the instance's env file and config templates again, as at its create: ACC_URL (and
 * {{ url }} in templates) follow its scheme. The running process keeps its environment: the
 * new one is read at its next start.
 */
async function rewriteInstanceFiles(ctx: AccContext, instance: InstanceRecord): Promise<void> {
  const p = instancePaths(ctx.home, instance.name);
  // HOME/instances/NAME is root's: the instance cannot have swapped its env file for a link.
  const oldEnv = parseEnvFile(await readFile(p.env, "utf8"));
  const manifest = await instanceManifest(ctx, instance);
  const codeDir = codeDirOf(ctx, instance.model, instance.modelVersion, instance.modelHash);
  const databaseEnv: Record<string, string> = {};
  for (const key of DATABASE_ENV) {
    const value = oldEnv[key];
    if (value !== undefined) databaseEnv[key] = value;
  }
  await writeInstanceFiles(
    ctx,
    instance,
    { manifest, dir: codeDir, source: "user", hash: instance.modelHash },
    instance.params,
    codeDir,
    await dataOwner(ctx, instance.name),
    databaseEnv,
  );
}
