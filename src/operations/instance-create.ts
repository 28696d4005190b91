import { flag, listOption, positional, stringOption } from "../cli/command.js";
import type { InstanceJson } from "../services/instance-view.js";
import { CERTIFICATE_OUTCOME, INSTANCE } from "./schemas.js";
import { causeOf } from "./tokens.js";
import type { Operation } from "./types.js";

interface CreateInput {
  model: string;
  name?: string;
  hosts?: string[];
  params?: string[];
  idle_timeout?: string;
  limits?: string[];
  start?: boolean;
}

type CreateOutput = InstanceJson & {
  generated: Record<string, string>;
  secrets_file: string;
  /** tls = "acme": its certificate, or why none yet (acc server retries). */
  certificate?: { issued: boolean; message: string };
};

const strings = (description: string) => ({
  type: "array",
  items: { type: "string" },
  description,
});

export const createOperation: Operation<CreateInput, CreateOutput> = {
  id: "instance.create",
  summary: "Create an instance of a model, start it and print its URL.",
  method: "POST",
  path: "/instances",
  input: {
    type: "object",
    properties: {
      model: { type: "string", description: "the model's name (acc models lists them)" },
      name: {
        type: "string",
        description: "instance name (a DNS label); default MODEL1, MODEL2, ...",
      },
      hosts: strings("extra host names it answers to; NAME.<domain> is always one"),
      params: strings("model parameters as KEY=VALUE; secrets not given are generated"),
      idle_timeout: {
        type: "string",
        description: "stop after this long without requests (30s, 15m, 2h, never)",
      },
      limits: strings("limits of its cgroup as KEY=VALUE: memory=512M, cpu=0.5, pids=200"),
      start: { type: "boolean", default: true, description: "start it (default true)" },
    },
    required: ["model"],
    additionalProperties: false,
  },
  output: {
    allOf: [
      INSTANCE,
      {
        type: "object",
        properties: {
          generated: {
            type: "object",
            additionalProperties: { type: "string" },
            description: "generated secrets, shown once",
          },
          certificate: {
            ...CERTIFICATE_OUTCOME,
            description: 'tls = "acme": its certificate, or why none yet',
          },
          secrets_file: { type: "string" },
        },
      },
    ],
  },
  errors: [
    "ACC_NOT_FOUND",
    "ACC_CONFLICT",
    "ACC_MODEL",
    "ACC_START_FAILED",
    "ACC_NGINX",
    "ACC_NOT_BOOTED",
    "ACC_ENV",
  ],
  permission: "change",
  long: true,
  async run(call, input) {
    const { createInstance, getInstance, startInstance } = await import("../services/instances.js");
    const { instanceJson } = await import("../services/instance-view.js");
    const { certificateAfterChange } = await import("../services/acme.js");
    const start = input.start !== false;
    // Under tls = "acme" the certificate comes before the first start, so that the app's first
    // ACC_URL is already https.
    const acme = call.ctx.config.tls === "acme";
    const result = await createInstance(call.ctx, {
      model: input.model,
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.idle_timeout !== undefined ? { idleTimeout: input.idle_timeout } : {}),
      hosts: input.hosts ?? [],
      params: input.params ?? [],
      limits: input.limits ?? [],
      start: start && !acme,
    });
    const cause = causeOf(call.caller);
    const certificate = await certificateAfterChange(call.ctx, result.instance.name, cause);
    const instance =
      start && acme
        ? await startInstance(call.ctx, result.instance.name, cause)
        : await getInstance(call.ctx, result.instance.name);
    return {
      ...instanceJson(call.ctx, instance),
      generated: result.generated,
      secrets_file: result.secretsFile,
      ...(certificate === undefined ? {} : { certificate }),
    };
  },
  cli: {
    name: "create",
    usage:
      "MODEL [--name N] [--host H]... [--param K=V]... [--idle-timeout D] [--limit K=V]... [--no-start]",
    help: [
      "--name N            instance name (a DNS label); default MODEL1, MODEL2, ...",
      "--host H            extra host name it answers to (repeatable); NAME.<domain> is always one",
      "--param K=V         a model parameter (repeatable); secrets not given are generated",
      "--idle-timeout D    stop after D without requests (30s, 15m, 2h, never)",
      "--limit K=V         a limit of its cgroup (repeatable): memory=512M, cpu=0.5, pids=200",
      "--no-start          create it stopped",
    ],
    options: {
      name: { type: "string" },
      host: { type: "string", multiple: true },
      param: { type: "string", multiple: true },
      "idle-timeout": { type: "string" },
      limit: { type: "string", multiple: true },
      "no-start": { type: "boolean" },
    },
    positionals: { min: 1, max: 1, names: "MODEL" },
    json: true,
    input(args) {
      const name = stringOption(args, "name");
      const idleTimeout = stringOption(args, "idle-timeout");
      return {
        model: positional(args, 0),
        ...(name !== undefined ? { name } : {}),
        ...(idleTimeout !== undefined ? { idle_timeout: idleTimeout } : {}),
        hosts: listOption(args, "host"),
        params: listOption(args, "param"),
        limits: listOption(args, "limit"),
        ...(flag(args, "no-start") ? { start: false } : {}),
      };
    },
    render(view) {
      const lines = [`${view.name} ${view.state}: ${view.url}`];
      if (view.certificate !== undefined) {
        lines.push(`${view.certificate.issued ? "" : "warning: "}${view.certificate.message}`);
      }
      const generated = Object.entries(view.generated);
      if (generated.length > 0) {
        lines.push("generated secrets (shown once; kept in the instance's env file):");
        for (const [key, value] of generated) lines.push(`  ${key} = ${value}`);
        lines.push(`  stored in ${view.secrets_file}`);
      }
      return { text: lines.join("\n") };
    },
  },
};
