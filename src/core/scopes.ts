import { AccError } from "../lib/errors.js";
import type { Permission, TokenScope } from "../operations/types.js";
import { isValidInstanceName, showValue } from "./validate.js";

const SCOPE_HINT = "use admin, read or instance:NAME (NAME an existing instance's name)";

/** A token's scope from its text form: `admin`, `read` or `instance:NAME`. */
export function parseScope(text: string): TokenScope {
  if (text === "admin") return { kind: "admin" };
  if (text === "read") return { kind: "read" };
  if (text.startsWith("instance:")) {
    const name = text.slice("instance:".length);
    if (isValidInstanceName(name)) return { kind: "instance", name };
  }
  throw new AccError("ACC_INVALID", `invalid scope ${showValue(text)}`, { hint: SCOPE_HINT });
}

export function formatScope(scope: TokenScope): string {
  return scope.kind === "instance" ? `instance:${scope.name}` : scope.kind;
}

/**
 * Whether a token of this scope may call an operation that needs `permission`.
 * An instance token reaches only operations marked `instanceToken`, and only for its own
 * instance (`inputName`, the operation's input `name`): never secrets, lists or other names.
 */
export function allows(
  scope: TokenScope,
  permission: Permission,
  instanceToken: boolean,
  inputName: string | undefined,
): boolean {
  switch (scope.kind) {
    case "admin":
      return true;
    case "read":
      return permission === "read";
    case "instance":
      return (
        instanceToken &&
        inputName === scope.name &&
        (permission === "read" || permission === "change")
      );
  }
}
