import type { FastifyInstance } from "fastify";
import { allows } from "../core/scopes.js";
import { AccError } from "../lib/errors.js";
import type { Metrics } from "../services/metrics.js";
import { callerOf, type ApiDeps } from "./api.js";

/**
 * GET /metrics (Prometheus text): the local socket, or a token that may read everything
 * (admin or read): the counts name no instance, but an instance token sees only its own.
 */
export function registerMetricsRoute(
  app: FastifyInstance,
  deps: Pick<ApiDeps, "authenticate">,
  metrics: Metrics,
): void {
  app.get("/metrics", async (request, reply) => {
    const caller = await callerOf(request, deps);
    if (caller.kind === "token" && !allows(caller.scope, "read", false, undefined)) {
      throw new AccError("ACC_FORBIDDEN", `token ${caller.name} may not read the metrics`, {
        hint: "a read or admin token can",
      });
    }
    return reply.type(metrics.contentType).send(await metrics.render());
  });
}
