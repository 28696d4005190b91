import { stringOption, type Command, type CommandResult } from "../cli/command.js";
import { ago, table } from "../cli/output.js";
import { AccError } from "../lib/errors.js";
import type { CreatedToken, TokenInfo } from "../services/tokens.js";
import { callOperation } from "./cli.js";
import type { Caller, Operation } from "./types.js";

/** What events say made the change: the CLI (local socket or here), or the API token. */
export function causeOf(caller: Caller): string {
  return caller.kind === "token" ? `token:${caller.name}` : "cli";
}

const TOKEN: Record<string, unknown> = {
  type: "object",
  required: [
    "id",
    "name",
    "scope",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "state",
  ],
  properties: {
    id: { type: "string" },
    name: { type: "string" },
    scope: { type: "string", description: "admin, read or instance:NAME" },
    created_at: { type: "string" },
    expires_at: { type: ["string", "null"] },
    last_used_at: { type: ["string", "null"] },
    revoked_at: { type: ["string", "null"] },
    state: { type: "string", enum: ["active", "expired", "revoked"] },
  },
};

interface CreateInput {
  scope: string;
  name?: string;
  expires?: string;
}

export const tokenCreateOperation: Operation<CreateInput, CreatedToken> = {
  id: "token.create",
  summary: "Make an API token: its secret is shown once, and only its hash is kept.",
  method: "POST",
  path: "/tokens",
  input: {
    type: "object",
    properties: {
      scope: {
        type: "string",
        description:
          "admin (everything), read (everything but secrets and changes) or instance:NAME (one instance: state, URL, events, logs, start, stop, restart, backups)",
      },
      name: { type: "string", description: "a name to know it by (default: from its scope)" },
      expires: {
        type: "string",
        description: "a duration from now (30d, 12h), an ISO date, or never (the default)",
      },
    },
    required: ["scope"],
    additionalProperties: false,
  },
  output: {
    type: "object",
    required: ["id", "name", "scope", "token", "created_at", "expires_at"],
    properties: {
      id: { type: "string" },
      name: { type: "string" },
      scope: { type: "string" },
      token: { type: "string", description: "the secret: shown this once" },
      created_at: { type: "string" },
      expires_at: { type: ["string", "null"] },
    },
  },
  errors: ["ACC_NOT_FOUND", "ACC_CONFLICT"],
  permission: "secret",
  async run(call, input) {
    const { createToken } = await import("../services/tokens.js");
    return createToken(call.ctx, { ...input, cause: causeOf(call.caller) });
  },
};

export const tokenListOperation: Operation<Record<string, never>, TokenInfo[]> = {
  id: "token.list",
  summary: "List the API tokens (never their secrets): scope, expiry, last use, state.",
  method: "GET",
  path: "/tokens",
  input: { type: "object", properties: {}, additionalProperties: false },
  output: { type: "array", items: TOKEN },
  errors: [],
  permission: "secret",
  async run(call) {
    const { listTokens } = await import("../services/tokens.js");
    return listTokens(call.ctx);
  },
};

export const tokenRevokeOperation: Operation<{ token: string }, TokenInfo> = {
  id: "token.revoke",
  summary: "Revoke an API token, by id or name: it is refused from its next request on.",
  method: "DELETE",
  path: "/tokens/{token}",
  input: {
    type: "object",
    properties: { token: { type: "string", description: "the token's id or name" } },
    required: ["token"],
    additionalProperties: false,
  },
  output: TOKEN,
  errors: ["ACC_NOT_FOUND"],
  permission: "secret",
  async run(call, input) {
    const { revokeToken } = await import("../services/tokens.js");
    return revokeToken(call.ctx, input.token, { cause: causeOf(call.caller) });
  },
};

function renderTokens(tokens: TokenInfo[], now: Date): string {
  if (tokens.length === 0) return "no tokens: acc token create --scope read";
  return table(
    ["ID", "NAME", "SCOPE", "STATE", "EXPIRES", "LAST USED"],
    tokens.map((t) => [
      t.id,
      t.name,
      t.scope,
      t.state,
      t.expires_at ?? "never",
      ago(t.last_used_at, now),
    ]),
  );
}

const USAGE =
  "create --scope admin|read|instance:NAME [--name N] [--expires D] | list | revoke ID|NAME";

/** `acc token create|list|revoke`: the three token operations. */
export const tokenCommand: Command = {
  name: "token",
  summary:
    "API tokens: create (shown once, stored hashed), list, revoke. Scopes: admin, read, instance:NAME.",
  usage: USAGE,
  help: [
    "create              make a token and print its secret (once)",
    "--scope S           admin, read (all but secrets and changes) or instance:NAME",
    "--name N            a name to know it by",
    "--expires D         a duration (30d, 12h) or an ISO date; default never",
    "list                the tokens, without secrets",
    "revoke ID|NAME      refuse this token from now on",
  ],
  options: { scope: { type: "string" }, name: { type: "string" }, expires: { type: "string" } },
  positionals: { min: 1, max: 2, names: "create, list or revoke" },
  json: true,
  operation: "token.list",
  async run(args, cli): Promise<CommandResult> {
    const [action, target] = args.positionals;
    const extra = (allowed: string[]): void => {
      for (const key of ["scope", "name", "expires"])
        if (!allowed.includes(key) && args.values[key] !== undefined)
          throw new AccError("ACC_USAGE", `acc token ${action}: --${key} goes with create`, {
            hint: `usage: acc token ${USAGE}`,
          });
      if (action !== "revoke" && target !== undefined)
        throw new AccError(
          "ACC_USAGE",
          `acc token ${action}: unexpected argument ${JSON.stringify(target)}`,
          {
            hint: `usage: acc token ${USAGE}`,
          },
        );
    };
    if (action === "create") {
      extra(["scope", "name", "expires"]);
      const scope = stringOption(args, "scope");
      if (scope === undefined)
        throw new AccError("ACC_USAGE", "acc token create: missing --scope", {
          hint: "--scope admin, --scope read or --scope instance:NAME",
        });
      const name = stringOption(args, "name");
      const expires = stringOption(args, "expires");
      const { output, raw } = await callOperation(cli, tokenCreateOperation, {
        scope,
        ...(name !== undefined ? { name } : {}),
        ...(expires !== undefined ? { expires } : {}),
      });
      const token = output as CreatedToken;
      return {
        data: token,
        ...(raw !== undefined ? { raw } : {}),
        text: [
          `token ${token.name} (${token.id}), scope ${token.scope}, expires ${token.expires_at ?? "never"}`,
          `secret (shown once): ${token.token}`,
        ].join("\n"),
      };
    }
    if (action === "list") {
      extra([]);
      const { output, raw } = await callOperation(cli, tokenListOperation, {});
      const tokens = output as TokenInfo[];
      return {
        data: tokens,
        ...(raw !== undefined ? { raw } : {}),
        text: () => renderTokens(tokens, new Date()),
      };
    }
    if (action === "revoke") {
      extra([]);
      if (target === undefined)
        throw new AccError("ACC_USAGE", "acc token revoke: missing ID or NAME", {
          hint: "acc token list shows them",
        });
      const { output } = await callOperation(cli, tokenRevokeOperation, { token: target });
      const token = output as TokenInfo;
      return { data: token, text: `token ${token.name} (${token.id}) is revoked` };
    }
    throw new AccError("ACC_USAGE", `acc token: unknown action ${JSON.stringify(action)}`, {
      hint: `usage: acc token ${USAGE}`,
    });
  },
};
