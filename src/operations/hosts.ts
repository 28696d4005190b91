import { positional, type Command, type CommandResult } from "../cli/command.js";
import { validateInstanceName } from "../core/validate.js";
import type { InstanceJson } from "../services/instance-view.js";
import { runAction } from "./cli.js";
import { CERTIFICATE_OUTCOME, INSTANCE, NAME } from "./schemas.js";
import { causeOf } from "./tokens.js";
import type { Operation } from "./types.js";

interface HostInput {
  name: string;
  host: string;
}

const HOST = { type: "string", description: "a DNS name, such as crm.example.com" };

const HOST_INPUT = {
  type: "object",
  properties: { name: NAME, host: HOST },
  required: ["name", "host"],
  additionalProperties: false,
} as const;

type HostChange = "add" | "remove";

interface HostResult extends InstanceJson {
  /** tls = "acme": the certificate for the new set of hosts, or why none yet. */
  certificate?: { issued: boolean; message: string };
}

/** `acc host add|remove NAME HOST`: the same input and answer, another change of the hosts. */
function hostOperation(options: {
  action: HostChange;
  summary: string;
  method: "POST" | "DELETE";
  path: string;
  errors: Operation["errors"];
}): Operation<HostInput, HostResult> {
  return {
    id: `instance.host-${options.action}`,
    summary: options.summary,
    method: options.method,
    path: options.path,
    input: HOST_INPUT,
    output: {
      allOf: [INSTANCE, { type: "object", properties: { certificate: CERTIFICATE_OUTCOME } }],
    },
    errors: options.errors,
    permission: "change",
    async run(call, input) {
      const { addHost, removeHost } = await import("../services/instance-hosts.js");
      const { instanceJson } = await import("../services/instance-view.js");
      const { certificateAfterChange } = await import("../services/acme.js");
      const change = options.action === "add" ? addHost : removeHost;
      const name = validateInstanceName(input.name);
      const cause = causeOf(call.caller);
      await change(call.ctx, name, input.host, { cause });
      const certificate = await certificateAfterChange(call.ctx, name, cause);
      const { getInstance } = await import("../services/instances.js");
      return {
        ...instanceJson(call.ctx, await getInstance(call.ctx, name)),
        ...(certificate === undefined ? {} : { certificate }),
      };
    },
    cli: {
      name: `host ${options.action}`,
      usage: "NAME HOST",
      help: [],
      options: {},
      positionals: { min: 2, max: 2, names: "NAME and HOST" },
      json: true,
      input: (args) => ({
        name: validateInstanceName(positional(args, 0)),
        host: positional(args, 1),
      }),
      render: (view) => ({
        text: [
          `${view.name} answers ${view.hosts.join(", ")}`,
          ...(view.certificate === undefined
            ? []
            : [`${view.certificate.issued ? "" : "warning: "}${view.certificate.message}`]),
        ].join("\n"),
      }),
    },
  };
}

export const hostAddOperation = hostOperation({
  action: "add",
  summary:
    "Add a host name to an instance: nginx sends its requests to it too (checked by nginx -t; nothing changes when nginx refuses it).",
  method: "POST",
  path: "/instances/{name}/hosts",
  errors: ["ACC_NOT_FOUND", "ACC_INVALID", "ACC_CONFLICT", "ACC_BUSY", "ACC_STATE", "ACC_NGINX"],
});

export const hostRemoveOperation = hostOperation({
  action: "remove",
  summary:
    "Remove a host name from an instance (not the host of its URL): nginx no longer sends its requests to it.",
  method: "DELETE",
  path: "/instances/{name}/hosts/{host}",
  errors: ["ACC_NOT_FOUND", "ACC_INVALID", "ACC_BUSY", "ACC_STATE", "ACC_NGINX"],
});

const ACTIONS: Record<string, Operation<HostInput, InstanceJson>> = {
  add: hostAddOperation,
  remove: hostRemoveOperation,
};

/** `acc host add|remove NAME HOST`. */
export const hostCommand: Command = {
  name: "host",
  summary:
    "Add or remove a host name of an instance after its create (nginx -t checks each change; a refused one changes nothing).",
  usage: "add|remove NAME HOST [--json]",
  help: [
    "add NAME HOST       nginx sends HOST's requests to NAME too",
    "remove NAME HOST    no longer (the host of NAME's URL stays)",
  ],
  options: {},
  positionals: { min: 3, max: 3, names: "add or remove, NAME and HOST" },
  json: true,
  run(args, cli): Promise<CommandResult> {
    return runAction("host", ACTIONS, args, cli, "add|remove NAME HOST");
  },
};
