import type { FastifyRequest } from "fastify";
import { createAuthThrottle } from "../core/auth-throttle.js";
import { AccError } from "../lib/errors.js";
import type { AccContext } from "../services/context.js";
import type { Caller } from "../operations/types.js";

/**
 * Where a request through nginx comes from: nginx sets X-Real-IP itself (a client's own is
 * replaced), and only nginx can open the admin socket.
 */
export function sourceOf(request: FastifyRequest): string {
  const header = request.headers["x-real-ip"];
  return typeof header === "string" && header !== "" ? header : "unknown";
}

export type Authenticate = (request: FastifyRequest) => Promise<Caller>;

/**
 * Bearer tokens (services/tokens.ts), with failed attempts limited per source: a guesser is
 * refused (429) before its token is even looked at.
 */
export function bearerAuthenticator(
  ctx: AccContext,
  options: { sessionToken?: (request: FastifyRequest) => string | undefined } = {},
): {
  authenticate: Authenticate;
  /** A token's check, for the UI's sign-in (the same limits). */
  verify(secret: string, source: string): Promise<Caller>;
} {
  const throttle = createAuthThrottle({ maxFailures: 10, windowMs: 60_000, now: () => Date.now() });
  const verify = async (secret: string, source: string): Promise<Caller> => {
    const check = throttle.check(source);
    if (!check.allowed) {
      throw new AccError("ACC_RATE_LIMITED", "too many failed authentications from this address", {
        hint: `try again in ${check.retryAfterSeconds} s`,
        retryAfterSeconds: check.retryAfterSeconds,
      });
    }
    const { verifyToken } = await import("../services/tokens.js");
    const result = await verifyToken(ctx, secret);
    if (!result.ok) {
      throttle.fail(source);
      throw new AccError("ACC_UNAUTHORIZED", `token refused: ${result.reason}`, {
        hint: "acc token create makes one; acc token list shows them",
      });
    }
    throttle.succeed(source);
    return {
      kind: "token",
      id: result.token.id,
      name: result.token.name,
      scope: result.token.scope,
    };
  };
  return {
    verify,
    async authenticate(request) {
      const header = request.headers.authorization;
      const bearer =
        typeof header === "string" && /^Bearer\s+/i.test(header)
          ? header.replace(/^Bearer\s+/i, "").trim()
          : undefined;
      const secret = bearer ?? options.sessionToken?.(request);
      if (secret === undefined) {
        throw new AccError("ACC_UNAUTHORIZED", "no token", {
          hint: "send Authorization: Bearer <token> (acc token create makes one)",
        });
      }
      return verify(secret, sourceOf(request));
    },
  };
}
