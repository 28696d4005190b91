// Manual certificates (acc tls import, acc tls list): checked before use, stored under
// HOME/tls (root's, readable by nginx's workers only), served by acc's nginx when acc.toml's
// tls is not off.
import { rm } from "node:fs/promises";
import { certificateStatePath } from "../core/paths.js";
import { wildcardName } from "../core/tls-hosts.js";
import { isValidInstanceName } from "../core/validate.js";
import { certificatePath } from "../drivers/nginx/render.js";
import { checkCertificate, describeCertificate } from "../lib/certificates.js";
import { AccError } from "../lib/errors.js";
import { readDirIfExists, readFileIfExists } from "../lib/files.js";
import type { AccContext } from "./context.js";
import { certificateWarning, readCertificateState, targetEvent, targetOf } from "./acme.js";
import { lease, urlOf } from "./instances.js";
import { rewriteInstanceFiles } from "./instance-url.js";
import { TLS_OPERATION } from "./tls-url.js";

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
  /** acme: ordered and renewed by acc (tls = "acme"); manual: imported by acc tls import. */
  source: "manual" | "acme";
  /** Failed renewals in a row (acme), and what needs a look (failures, a close expiry). */
  failures?: number;
  warning?: string | null;
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
  await targetOf(ctx, name);
  return lease(ctx, name, TLS_OPERATION, async () => {
    const target = await targetOf(ctx, name);
    const checked = checkCertificate({
      cert: request.cert,
      key: request.key,
      certFile: request.certFile,
      keyFile: request.keyFile,
      hosts: target.hosts,
      now: ctx.now(),
    });
    const { instance } = target;
    const urlBefore = instance ? urlOf(ctx, instance) : undefined;
    const started = Date.now();
    await ctx.proxy.applyCertificate({
      name,
      files: { cert: checked.chainPem, key: checked.keyPem },
      hosts: target.hosts,
    });
    const changed = instance !== undefined && urlOf(ctx, instance) !== urlBefore;
    // An imported certificate is the sysadmin's: acc no longer orders or renews one for it.
    await rm(certificateStatePath(ctx.paths, name), { force: true });
    if (changed) await rewriteInstanceFiles(ctx, instance);
    await targetEvent(ctx, target, "ok", {
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
    const state = await readCertificateState(ctx, name);
    const { names: hosts, notBefore, notAfter } = describeCertificate(pem, file);
    out.push({
      for: name,
      hosts,
      not_after: notAfter.toISOString(),
      source: state === undefined ? "manual" : "acme",
      failures: state?.failures ?? 0,
      warning: certificateWarning({ notBefore, notAfter }, state, ctx.now()),
    });
  }
  const wildcard = await readFileIfExists(ctx.paths.tlsWildcardCert);
  if (wildcard !== undefined) {
    const { names, notBefore, notAfter } = describeCertificate(wildcard, ctx.paths.tlsWildcardCert);
    out.push({
      for: "*",
      hosts: names,
      not_after: notAfter.toISOString(),
      source: "manual",
      failures: 0,
      warning: certificateWarning({ notBefore, notAfter }, undefined, ctx.now()),
    });
  }
  return out;
}
