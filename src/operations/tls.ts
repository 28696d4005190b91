import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import path from "node:path";
import {
  flag,
  positional,
  stringOption,
  type Command,
  type CommandResult,
} from "../cli/command.js";
import { table } from "../cli/output.js";
import { showValue, validateInstanceName } from "../core/validate.js";
import { AccError, hasErrno } from "../lib/errors.js";
import type { IssueResult } from "../services/acme.js";
import type { CertificateInfo, ImportResult } from "../services/tls.js";
import { runAction } from "./cli.js";
import { NAME, NO_INPUT } from "./schemas.js";
import { causeOf } from "./tokens.js";
import type { JsonSchema, Operation } from "./types.js";

/** A certificate chain or key file is a few KB; a bigger one is not what was meant. */
const MAX_PEM_BYTES = 256 * 1024;

interface ImportInput {
  cert: string;
  key: string;
  /** The files they came from, named in the messages. */
  cert_file?: string;
  key_file?: string;
  for?: string;
  wildcard?: boolean;
}

const CERTIFICATE: JsonSchema = {
  type: "object",
  required: ["for", "hosts", "not_after", "source"],
  properties: {
    for: { type: "string", description: 'the instance, or "*" for the wildcard' },
    hosts: { type: "array", items: { type: "string" } },
    not_after: { type: "string", format: "date-time" },
    source: { type: "string", enum: ["manual", "acme"] },
    failures: { type: "integer", description: "failed renewals in a row (acme)" },
    warning: {
      type: ["string", "null"],
      description: "what needs a look: renewal failing, expiry close",
    },
  },
};

const FILE_LABEL = { type: "string", maxLength: 1024 };

/**
 * Reads a PEM file for the CLI: never through a link (as root, a link could hand acc a file
 * its caller may not read), a regular file only, and a small one.
 */
export function readPemFile(file: string): string {
  const shown = showValue(file);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (hasErrno(error, "ELOOP")) {
      throw new AccError("ACC_INVALID", `${shown} is a symbolic link`, {
        hint: `give the file it points to: ${showValue(path.resolve(file))} resolved by realpath`,
      });
    }
    if (hasErrno(error, "ENOENT")) {
      throw new AccError("ACC_INVALID", `no file ${shown}`, { hint: "check the path" });
    }
    if (hasErrno(error, "EACCES")) {
      throw new AccError("ACC_INVALID", `cannot read ${shown}: permission denied`);
    }
    throw error;
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) {
      throw new AccError("ACC_INVALID", `${shown} is not a regular file`, {
        hint: "give a PEM file",
      });
    }
    if (info.size > MAX_PEM_BYTES) {
      throw new AccError("ACC_INVALID", `${shown} is larger than ${MAX_PEM_BYTES / 1024} KiB`, {
        hint: "a PEM certificate chain or key is a few KiB",
      });
    }
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

export const tlsImportOperation: Operation<ImportInput, ImportResult> = {
  id: "tls.import",
  summary:
    "Import a certificate and its key for an instance (its hosts) or as the wildcard *.<domain>: checked (key, chain, hosts, dates), then served by nginx over HTTPS.",
  method: "POST",
  path: "/tls/certificates",
  input: {
    type: "object",
    properties: {
      cert: {
        type: "string",
        maxLength: MAX_PEM_BYTES,
        description: "PEM: the certificate, then each intermediate",
      },
      key: { type: "string", maxLength: MAX_PEM_BYTES, description: "PEM: its private key" },
      cert_file: FILE_LABEL,
      key_file: FILE_LABEL,
      for: NAME,
      wildcard: { type: "boolean" },
    },
    required: ["cert", "key"],
    additionalProperties: false,
  },
  output: {
    allOf: [
      CERTIFICATE,
      {
        type: "object",
        properties: {
          warnings: { type: "array", items: { type: "string" } },
          url_changed: { type: "array", items: { type: "string" } },
        },
      },
    ],
  },
  errors: ["ACC_NOT_FOUND", "ACC_INVALID", "ACC_USAGE", "ACC_BUSY", "ACC_NGINX"],
  permission: "secret",
  async run(call, input) {
    const { importCertificate } = await import("../services/tls.js");
    return importCertificate(call.ctx, {
      cert: input.cert,
      key: input.key,
      certFile: showValue(input.cert_file ?? "cert"),
      keyFile: showValue(input.key_file ?? "key"),
      ...(input.for === undefined ? {} : { name: validateInstanceName(input.for) }),
      ...(input.wildcard === true ? { wildcard: true } : {}),
      cause: causeOf(call.caller),
    });
  },
  cli: {
    name: "tls import",
    usage: "--cert FILE --key FILE (--for NAME | --wildcard)",
    help: [
      "--cert FILE         PEM: the certificate, then each intermediate in order",
      "--key FILE          PEM: its private key (not encrypted)",
      "--for NAME          for instance NAME: it must cover every host of NAME (the admin",
      "                    host's first label, such as acc: for acc's admin host)",
      "--wildcard          for *.<domain>: every NAME.<domain> without its own",
    ],
    options: {
      cert: { type: "string" },
      key: { type: "string" },
      for: { type: "string" },
      wildcard: { type: "boolean" },
    },
    positionals: { min: 0, max: 0, names: "" },
    json: true,
    input: (args) => {
      const certFile = stringOption(args, "cert");
      const keyFile = stringOption(args, "key");
      const name = stringOption(args, "for");
      const wildcard = flag(args, "wildcard");
      if (certFile === undefined || keyFile === undefined) {
        throw new AccError("ACC_USAGE", "acc tls import needs --cert FILE and --key FILE");
      }
      if ((name === undefined) === !wildcard) {
        throw new AccError("ACC_USAGE", "acc tls import needs either --for NAME or --wildcard");
      }
      return {
        ...(name === undefined ? { wildcard: true } : { for: validateInstanceName(name) }),
        cert: readPemFile(certFile),
        key: readPemFile(keyFile),
        cert_file: certFile,
        key_file: keyFile,
      };
    },
    render: (result) => ({
      text: [
        `certificate for ${result.for === "*" ? "the wildcard" : result.for}: ${result.hosts.join(", ")}, valid until ${result.not_after}`,
        ...result.warnings.map((warning) => `warning: ${warning}`),
        ...(result.url_changed.length === 0
          ? []
          : [
              `URL now https for ${result.url_changed.join(", ")} (ACC_URL: read at the next start)`,
            ]),
      ].join("\n"),
    }),
  },
};

export const tlsListOperation: Operation<Record<string, never>, CertificateInfo[]> = {
  id: "tls.list",
  summary: "List the certificates acc serves: for which instance, their hosts, expiry, source.",
  method: "GET",
  path: "/tls/certificates",
  input: NO_INPUT,
  output: { type: "array", items: CERTIFICATE },
  errors: [],
  permission: "read",
  async run(call) {
    const { listCertificates } = await import("../services/tls.js");
    return listCertificates(call.ctx);
  },
  cli: {
    name: "tls list",
    usage: "[--json]",
    help: [],
    options: {},
    positionals: { min: 0, max: 0, names: "" },
    json: true,
    input: () => ({}),
    render: (list) => ({
      text:
        list.length === 0
          ? "no certificates: acc tls import --cert FILE --key FILE --for NAME"
          : table(
              ["FOR", "HOSTS", "EXPIRES", "SOURCE"],
              list.map((c) => [c.for, c.hosts.join(","), c.not_after, c.source]),
            ),
    }),
  },
};

interface IssueInput {
  name: string;
  skip_check?: boolean;
}

export const tlsIssueOperation: Operation<IssueInput, IssueResult> = {
  id: "tls.issue",
  summary:
    'Order a certificate for an instance\'s hosts from the ACME server (tls = "acme"), after checking that each host reaches this server; serve it over HTTPS. acc server renews it.',
  method: "POST",
  path: "/instances/{name}/certificate",
  input: {
    type: "object",
    properties: {
      name: NAME,
      skip_check: {
        type: "boolean",
        description: "order without first fetching a token through each host name",
      },
    },
    required: ["name"],
    additionalProperties: false,
  },
  output: {
    type: "object",
    required: ["name", "hosts", "not_after", "url_changed"],
    properties: {
      name: { type: "string" },
      hosts: { type: "array", items: { type: "string" } },
      not_after: { type: "string", format: "date-time" },
      url_changed: { type: "boolean" },
    },
  },
  errors: [
    "ACC_NOT_FOUND",
    "ACC_INVALID",
    "ACC_BUSY",
    "ACC_NGINX",
    "ACC_RATE_LIMITED",
    "ACC_FAILED",
  ],
  permission: "change",
  long: true,
  async run(call, input) {
    const { issueCertificate } = await import("../services/acme.js");
    return issueCertificate(call.ctx, validateInstanceName(input.name), {
      cause: causeOf(call.caller),
      ...(input.skip_check === true ? { skipCheck: true } : {}),
    });
  },
  cli: {
    name: "tls issue",
    usage: "NAME [--skip-check]",
    help: [
      "--skip-check        order without first fetching a token through each host name",
      "                    (a server that cannot reach its own public address)",
    ],
    options: { "skip-check": { type: "boolean" } },
    positionals: { min: 1, max: 1, names: "NAME" },
    json: true,
    input: (args) => ({
      name: validateInstanceName(positional(args, 0)),
      ...(flag(args, "skip-check") ? { skip_check: true } : {}),
    }),
    render: (result) => ({
      text: [
        `certificate for ${result.name}: ${result.hosts.join(", ")}, valid until ${result.not_after}`,
        ...(result.url_changed ? [`URL now https (ACC_URL: read at the next start)`] : []),
      ].join("\n"),
    }),
  },
};

const ACTIONS: Record<string, Operation> = {
  import: tlsImportOperation,
  issue: tlsIssueOperation,
  list: tlsListOperation,
};

/** `acc tls import|list`. */
export const tlsCommand: Command = {
  name: "tls",
  summary:
    "HTTPS certificates: order one from the ACME server, import one (for an instance or the wildcard), list them.",
  usage: "issue|import|list [OPTIONS] [--json]",
  help: [
    'issue NAME [--skip-check]  order NAME\'s certificate now (tls = "acme")',
    "import --cert FILE --key FILE --for NAME|--wildcard",
    "list                what certificates acc serves, their hosts and expiry",
  ],
  options: { ...tlsImportOperation.cli!.options, ...tlsIssueOperation.cli!.options },
  positionals: { min: 1, max: 2, names: "issue, import or list" },
  json: true,
  run(args, cli): Promise<CommandResult> {
    return runAction("tls", ACTIONS, args, cli, "issue|import|list");
  },
};
