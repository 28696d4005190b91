import { randomBytes } from "node:crypto";

/** A random secret of url-safe characters: 18 bytes give 24 characters and 144 bits. */
export function generateSecret(bytes = 18): string {
  return randomBytes(bytes).toString("base64url");
}
