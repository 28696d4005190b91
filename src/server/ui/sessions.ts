import { randomBytes } from "node:crypto";
import type { Caller } from "../../operations/types.js";
import { newCsrfToken } from "./csrf.js";

/** The cookie: HttpOnly, SameSite=Strict, Path=/ui, Secure under TLS. */
export const SESSION_COOKIE = "acc_session";

/**
 * A signed-in browser. The token's secret stays here, in acc server's memory only, so every
 * request checks it again: a revoked or expired token ends its session at the next request.
 */
export interface Session {
  id: string;
  /** The token's secret, verified again at each request. */
  secret: string;
  csrf: string;
  caller: Extract<Caller, { kind: "token" }>;
  createdAt: number;
  /** Ends this long after the last request (idle), and at most `maxMs` after sign-in. */
  expiresAt: number;
  /** Said once on the next page: an action's outcome, after its redirect. */
  flash?: { kind: "ok" | "error"; text: string; detail?: string };
}

export interface SessionStore {
  create(secret: string, caller: Extract<Caller, { kind: "token" }>): Session;
  /** The live session of this id (its idle expiry pushed back), or undefined. */
  get(id: string | undefined): Session | undefined;
  delete(id: string | undefined): void;
  size(): number;
}

export interface SessionOptions {
  /** Idle time after which a session ends (default 8 h). */
  idleMs?: number;
  /** A session's longest life (default 24 h). */
  maxMs?: number;
  now?: () => number;
  /** At most this many sessions; the oldest go first (default 10,000). */
  max?: number;
}

export function createSessionStore(options: SessionOptions = {}): SessionStore {
  const idleMs = options.idleMs ?? 8 * 3600_000;
  const maxMs = options.maxMs ?? 24 * 3600_000;
  const max = options.max ?? 10_000;
  const now = options.now ?? Date.now;
  const sessions = new Map<string, Session>();
  const sweep = (): void => {
    const t = now();
    for (const [id, s] of sessions) if (s.expiresAt <= t) sessions.delete(id);
  };
  return {
    create(secret, caller) {
      sweep();
      // A Map keeps insertion order: the first keys are the oldest sessions.
      while (sessions.size >= max) sessions.delete(sessions.keys().next().value as string);
      const t = now();
      const session: Session = {
        id: randomBytes(32).toString("base64url"),
        secret,
        csrf: newCsrfToken(),
        caller,
        createdAt: t,
        expiresAt: Math.min(t + idleMs, t + maxMs),
      };
      sessions.set(session.id, session);
      return session;
    },
    get(id) {
      if (id === undefined) return undefined;
      const session = sessions.get(id);
      if (!session) return undefined;
      const t = now();
      if (session.expiresAt <= t) {
        sessions.delete(id);
        return undefined;
      }
      session.expiresAt = Math.min(t + idleMs, session.createdAt + maxMs);
      return session;
    },
    delete(id) {
      if (id !== undefined) sessions.delete(id);
    },
    size: () => sessions.size,
  };
}

/** The session id in a Cookie header, or undefined. */
export function sessionIdOf(cookieHeader: string | undefined): string | undefined {
  for (const part of (cookieHeader ?? "").split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === SESSION_COOKIE) {
      const value = rest.join("=");
      return /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

/** The Set-Cookie value for a session (or, with no session, one that removes it). */
export function sessionCookie(session: Session | undefined, secure: boolean): string {
  const attrs = ["Path=/ui", "HttpOnly", "SameSite=Strict", ...(secure ? ["Secure"] : [])];
  return session === undefined
    ? [`${SESSION_COOKIE}=`, "Max-Age=0", ...attrs].join("; ")
    : [`${SESSION_COOKIE}=${session.id}`, ...attrs].join("; ");
}
