// Whether an instance is served over HTTPS, hence the scheme of its URL (ACC_URL, acc list).
import { existsSync } from "node:fs";
import { instanceUrl } from "../core/instance-env.js";
import { hostCovered, wildcardName } from "../core/tls-hosts.js";
import { certificatePath } from "../drivers/nginx/render.js";
import type { AccContext } from "./context.js";

/** Operations on an instance's certificate hold its lease under this name. */
export const TLS_OPERATION = "tls";

/**
 * Its own certificate covers every host it had at import and its URL's host never goes; the
 * wildcard was checked to cover *.<domain>. Synchronous: `acc list` asks it of every instance,
 * and two stat calls cost less than reading the certificates.
 */
export function servedOverHttps(
  ctx: Pick<AccContext, "config" | "paths">,
  name: string,
  host: string,
): boolean {
  if (ctx.config.tls === "off") return false;
  if (existsSync(certificatePath(ctx.paths, name))) return true;
  return (
    hostCovered([wildcardName(ctx.config.domain)], host) && existsSync(ctx.paths.tlsWildcardCert)
  );
}

/** The public URL of an instance: HTTPS when it is served so, else HTTP. */
export function publicUrl(
  ctx: Pick<AccContext, "config" | "paths">,
  name: string,
  host: string,
): string {
  return servedOverHttps(ctx, name, host)
    ? instanceUrl(host, ctx.config.https_port, "https")
    : instanceUrl(host, ctx.config.http_port, "http");
}
