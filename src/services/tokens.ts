import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { parseDuration } from "../core/duration.js";
import { formatScope, parseScope } from "../core/scopes.js";
import { showValue } from "../core/validate.js";
import { AccError, isAccError } from "../lib/errors.js";
import type { TokenScope } from "../operations/types.js";
import type { TokenRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { getInstance } from "./instances.js";

/** What `createToken` answers: the secret is in it once, and nowhere else ever again. */
export interface CreatedToken {
  id: string;
  name: string;
  scope: string;
  /** acc_<id>_<43 characters>: shown once, stored only as its SHA-256. */
  token: string;
  created_at: string;
  expires_at: string | null;
}

export type TokenState = "active" | "expired" | "revoked";

/** A token as listed: never its secret nor its hash. */
export interface TokenInfo {
  id: string;
  name: string;
  scope: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  state: TokenState;
}

export type TokenCheck =
  | { ok: true; token: { id: string; name: string; scope: TokenScope } }
  | { ok: false; reason: "malformed" | "unknown" | "revoked" | "expired" };

export interface CreateTokenOptions {
  /** admin, read or instance:NAME. */
  scope: string;
  name?: string;
  /** A duration from now (30d, 12h), an ISO date, or never (the default). */
  expires?: string;
  /** Who asked, for the event: cli (the default), or the API caller (token:NAME). */
  cause?: string;
}

// The id is 12 hex characters (48 random bits: only a name, the secret part is the guard), and
// the secret 32 random bytes in base64url. An id never holds "_", so the split is unambiguous.
const SECRET_RE = /^acc_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const ID_RE = /^[0-9a-f]{12}$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
/** Last use is written at most once a minute per token: every API request verifies one. */
const TOUCH_EVERY_MS = 60_000;

function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/**
 * When a token made now should expire: an ISO date (time optional, UTC when no zone is
 * given), a duration from now (30d, 12h), or never (null). A time not in the future is refused.
 */
export function parseExpiry(text: string, now: Date): string | null {
  const invalid = (why: string): AccError =>
    new AccError("ACC_INVALID", `invalid expiry ${showValue(text)}: ${why}`, {
      hint: "use a duration such as 30d or 12h, a date such as 2027-01-31, or never",
    });
  const trimmed = text.trim();
  if (/^\d{4}-/.test(trimmed)) {
    if (!DATE_RE.test(trimmed)) throw invalid("not a date");
    // Date.parse takes a bare date as UTC but a date and time without a zone as local time.
    const at = Date.parse(/T[\d:.]+$/.test(trimmed) ? `${trimmed}Z` : trimmed);
    // Date.parse rolls 2026-02-30 over to March: the calendar day must exist as written.
    const [y, m, d] = trimmed.slice(0, 10).split("-").map(Number) as [number, number, number];
    const day = new Date(Date.UTC(y, m - 1, d));
    if (Number.isNaN(at) || day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d) {
      throw invalid("not a date");
    }
    if (at <= now.getTime()) throw invalid("it is in the past");
    return new Date(at).toISOString();
  }
  let ms: number | null;
  try {
    ms = parseDuration(trimmed, "expiry");
  } catch (error) {
    if (isAccError(error, "ACC_INVALID")) throw invalid("not a duration or a date");
    throw error;
  }
  if (ms === null) return null;
  if (ms <= 0) throw invalid("it is not in the future");
  const at = now.getTime() + ms;
  if (!Number.isFinite(at) || at > 8.64e15) throw invalid("too far in the future");
  return new Date(at).toISOString();
}

function validateTokenName(name: string): string {
  if (!NAME_RE.test(name) || ID_RE.test(name)) {
    throw new AccError("ACC_INVALID", `invalid token name ${showValue(name)}`, {
      hint: "use 1 to 64 characters a-z, A-Z, 0-9, '.', '_', ':' and '-', not 12 hex digits (an id)",
    });
  }
  return name;
}

/** A readable name nobody holds yet: the scope and a counter (admin-1, read-2, instance-shop-1). */
function defaultName(scope: TokenScope, taken: ReadonlySet<string>): string {
  const base = scope.kind === "instance" ? `instance-${scope.name}` : scope.kind;
  for (let n = 1; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

function stateOf(record: TokenRecord, now: Date): TokenState {
  if (record.revokedAt !== null) return "revoked";
  if (record.expiresAt !== null && Date.parse(record.expiresAt) <= now.getTime()) return "expired";
  return "active";
}

function toInfo(record: TokenRecord, now: Date): TokenInfo {
  return {
    id: record.id,
    name: record.name,
    scope: record.scope,
    created_at: record.createdAt,
    expires_at: record.expiresAt,
    last_used_at: record.lastUsedAt,
    revoked_at: record.revokedAt,
    state: stateOf(record, now),
  };
}

/**
 * Records a token's creation or revocation: its name, id and scope, never its secret. An
 * instance token's event belongs to its instance, so `acc events NAME` shows who may reach it.
 */
async function recordTokenEvent(
  ctx: AccContext,
  action: "token-create" | "token-revoke",
  token: { id: string; name: string; scope: string; expiresAt?: string | null },
  cause: string | undefined,
): Promise<void> {
  const scope = token.scope;
  await ctx.store.addEvent(
    {
      instance: scope.startsWith("instance:") ? scope.slice("instance:".length) : null,
      action,
      cause: cause ?? "cli",
      outcome: "ok",
      durationMs: null,
      message:
        `token ${token.name} (${token.id}), scope ${scope}` +
        (token.expiresAt ? `, expires ${token.expiresAt}` : ""),
    },
    ctx.now().toISOString(),
  );
}

/** Makes a token; its secret is in the answer only. */
export async function createToken(
  ctx: AccContext,
  options: CreateTokenOptions,
): Promise<CreatedToken> {
  const scope = parseScope(options.scope);
  const name = options.name === undefined ? undefined : validateTokenName(options.name);
  const now = ctx.now();
  const expiresAt = options.expires === undefined ? null : parseExpiry(options.expires, now);
  if (scope.kind === "instance") await getInstance(ctx, scope.name);

  const scopeText = formatScope(scope);
  for (let attempt = 0; ; attempt++) {
    const id = randomBytes(6).toString("hex");
    const secret = `acc_${id}_${randomBytes(32).toString("base64url")}`;
    const chosen =
      name ??
      defaultName(
        scope,
        new Set(
          (await ctx.store.listTokens()).filter((t) => t.revokedAt === null).map((t) => t.name),
        ),
      );
    const createdAt = now.toISOString();
    try {
      await ctx.store.addToken({
        id,
        name: chosen,
        scope: scopeText,
        secretHash: hashSecret(secret),
        createdAt,
        expiresAt,
      });
    } catch (error) {
      // Another process took the same default name meanwhile: count on.
      if (name === undefined && isAccError(error, "ACC_CONFLICT") && attempt < 10) continue;
      throw error;
    }
    await recordTokenEvent(
      ctx,
      "token-create",
      { id, name: chosen, scope: scopeText, expiresAt },
      options.cause,
    );
    return {
      id,
      name: chosen,
      scope: scopeText,
      token: secret,
      created_at: createdAt,
      expires_at: expiresAt,
    };
  }
}

/** Every token, revoked and expired ones too, oldest first; no secrets. */
export async function listTokens(ctx: AccContext): Promise<TokenInfo[]> {
  const now = ctx.now();
  return (await ctx.store.listTokens()).map((record) => toInfo(record, now));
}

async function findToken(ctx: AccContext, idOrName: string): Promise<TokenRecord> {
  const byId = ID_RE.test(idOrName) ? await ctx.store.getTokenById(idOrName) : undefined;
  if (byId) return byId;
  // A name may have been reused after a revoke: the token not revoked holds it, else the latest.
  const named = (await ctx.store.listTokens()).filter((t) => t.name === idOrName);
  const found = named.find((t) => t.revokedAt === null) ?? named.at(-1);
  if (!found) {
    throw new AccError("ACC_NOT_FOUND", `no token with id or name ${showValue(idOrName)}`, {
      hint: "acc token list shows the tokens",
    });
  }
  return found;
}

/** Revokes a token by id or name; revoking a revoked token changes nothing. */
export async function revokeToken(
  ctx: AccContext,
  idOrName: string,
  options: { cause?: string } = {},
): Promise<TokenInfo> {
  const found = await findToken(ctx, idOrName);
  const now = ctx.now();
  if (await ctx.store.revokeToken(found.id, now.toISOString())) {
    await recordTokenEvent(ctx, "token-revoke", found, options.cause);
  }
  return toInfo((await ctx.store.getTokenById(found.id)) ?? found, now);
}

/**
 * Revokes every token scoped to an instance (when it is destroyed): a later instance of the
 * same name must not be reachable with the old one's tokens. Returns the names revoked.
 */
export async function revokeInstanceTokens(
  ctx: AccContext,
  instance: string,
  options: { cause?: string } = {},
): Promise<string[]> {
  const scope = formatScope({ kind: "instance", name: instance });
  const revoked: string[] = [];
  for (const token of await ctx.store.listTokens()) {
    if (token.scope !== scope || token.revokedAt !== null) continue;
    await revokeToken(ctx, token.id, options);
    revoked.push(token.name);
  }
  return revoked;
}

/** Whether a token that was valid is still: a stream it opened ends when it is revoked. */
export async function tokenActive(ctx: AccContext, id: string): Promise<boolean> {
  const record = await ctx.store.getTokenById(id);
  return record !== undefined && stateOf(record, ctx.now()) === "active";
}

/**
 * Checks a secret as a client sent it. The reasons are for logs and tests; a client should be
 * told only that it is not authenticated. Revoked and expired are said only to the holder of
 * the right secret, so a guessed id learns nothing.
 */
export async function verifyToken(ctx: AccContext, secret: string): Promise<TokenCheck> {
  const match = SECRET_RE.exec(secret);
  if (!match) return { ok: false, reason: "malformed" };
  const record = await ctx.store.getTokenById(match[1] ?? "");
  if (!record) return { ok: false, reason: "unknown" };
  const expected = Buffer.from(record.secretHash, "hex");
  const given = createHash("sha256").update(secret).digest();
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return { ok: false, reason: "unknown" };
  }
  const now = ctx.now();
  const state = stateOf(record, now);
  if (state !== "active") return { ok: false, reason: state };
  if (
    record.lastUsedAt === null ||
    now.getTime() - Date.parse(record.lastUsedAt) >= TOUCH_EVERY_MS
  ) {
    await ctx.store.touchToken(record.id, now.toISOString());
  }
  return { ok: true, token: { id: record.id, name: record.name, scope: parseScope(record.scope) } };
}
