// Renewal inside acc server (tls = "acme"): every tls_check_interval, each instance whose
// certificate is missing, no longer covers its hosts, or is past two thirds of its lifetime is
// ordered again, one at a time. Failures back off (the interval doubled per failure, at most a
// day), each attempt is an event, and after a few failures list, show and status warn. A sleeping
// instance is never woken: acc server answers the CA's challenges itself.
import { errorMessage } from "../lib/errors.js";
import { removeStaleChallenges } from "./acme-check.js";
import { dueCertificates, issueCertificate, refreshWarnings } from "./acme.js";
import type { AccContext } from "./context.js";
import { sleep } from "./monitor.js";

/** The cause of the events of a renewal acc server made on its own. */
export const RENEWAL_CAUSE = "renewal";

export interface RenewalPass {
  renewed: string[];
  failed: { name: string; error: string }[];
}

/** One look at every certificate: orders those due, one after the other. */
export async function renewalPass(ctx: AccContext): Promise<RenewalPass> {
  const report: RenewalPass = { renewed: [], failed: [] };
  for (const { name, reason } of await dueCertificates(ctx)) {
    try {
      await issueCertificate(ctx, name, { cause: RENEWAL_CAUSE, reason });
      report.renewed.push(name);
    } catch (error) {
      report.failed.push({ name, error: errorMessage(error).split("\n")[0] ?? "" });
    }
  }
  if (ctx.config.tls !== "off") await refreshWarnings(ctx);
  await removeStaleChallenges(ctx);
  return report;
}

/**
 * A pass at start-up (a home just switched to acme), then every tls_check_interval until
 * signal aborts. acc.toml is read again when it changes: a pass under tls != "acme" does nothing.
 */
export async function startRenewalLoop(
  ctx: AccContext,
  options: { signal: AbortSignal; log: (line: string) => void },
): Promise<void> {
  while (!options.signal.aborted) {
    try {
      const report = await renewalPass(ctx);
      for (const name of report.renewed) options.log(`tls: certificate of ${name} renewed`);
      for (const { name, error } of report.failed) {
        options.log(`tls: certificate of ${name} not renewed: ${error}`);
      }
    } catch (error) {
      options.log(`tls: renewal pass failed: ${errorMessage(error).split("\n")[0] ?? ""}`);
    }
    await sleep(ctx.config.tls_check_interval, options.signal);
  }
}
