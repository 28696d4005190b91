import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** The hidden field every form of the UI carries. */
export const CSRF_FIELD = "_csrf";

/** A session's CSRF token: random, kept with the session, never in a cookie. */
export function newCsrfToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * Whether a form's token is the session's: compared in constant time (through HMACs of equal
 * length, so a wrong length tells nothing either). A missing one never matches.
 */
export function csrfMatches(expected: string, given: unknown): boolean {
  if (typeof given !== "string" || given === "" || expected === "") return false;
  const key = randomBytes(16);
  const a = createHmac("sha256", key).update(expected).digest();
  const b = createHmac("sha256", key).update(given).digest();
  return timingSafeEqual(a, b);
}
