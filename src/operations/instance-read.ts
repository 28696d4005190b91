import { flag, positional } from "../cli/command.js";
import { ago, table } from "../cli/output.js";
import { describeExposedEndpoints } from "../core/exposure.js";
import { formatLimit, LIMIT_KEYS } from "../core/limits.js";
import { validateInstanceName } from "../core/validate.js";
import type { ListedInstance, ShownInstance } from "../services/instance-view.js";
import { INSTANCE, NAME } from "./schemas.js";
import type { Operation } from "./types.js";

interface ListInput {
  limit?: number;
  offset?: number;
}

export const listOperation: Operation<ListInput, ListedInstance[]> = {
  id: "instance.list",
  summary: "List the instances: name, state, URL, last activity.",
  method: "GET",
  path: "/instances",
  input: {
    type: "object",
    properties: {
      limit: {
        type: "integer",
        minimum: 1,
        maximum: 100_000,
        description: "at most this many, in name order (default: all)",
      },
      offset: { type: "integer", minimum: 0, description: "skip this many first" },
    },
    additionalProperties: false,
  },
  output: {
    type: "array",
    items: {
      allOf: [
        INSTANCE,
        { type: "object", properties: { memory_mb: { type: ["integer", "null"] } } },
      ],
    },
  },
  errors: [],
  permission: "read",
  async run(call, input) {
    const { listInstancesView } = await import("../services/instance-view.js");
    const all = await listInstancesView(call.ctx);
    const start = input.offset ?? 0;
    return input.limit === undefined && start === 0
      ? all
      : all.slice(start, start + (input.limit ?? all.length));
  },
  cli: {
    name: "list",
    usage: "[--json]",
    help: [],
    options: {},
    positionals: { min: 0, max: 0, names: "" },
    json: true,
    input: () => ({}),
    render: (instances, _input, { now }) => ({
      text: () =>
        instances.length === 0
          ? "no instances yet: acc create hello"
          : table(
              ["NAME", "MODEL", "STATE", "URL", "LAST ACTIVITY", "MEMORY"],
              instances.map((i) => [
                i.name,
                `${i.model} ${i.model_version}`,
                i.state,
                i.url,
                ago(i.last_activity_at, now),
                i.memory_mb === null ? "-" : `${i.memory_mb} MB`,
              ]),
            ),
    }),
  },
};

interface ShowInput {
  name: string;
  secrets?: boolean;
}

function showRows(view: ShownInstance): [string, string][] {
  const rows: [string, string][] = [
    ["name", view.name],
    ["model", `${view.model} ${view.model_version}`],
    ["state", view.state],
    ["url", view.url],
    ["hosts", view.hosts.join(", ")],
    ["port", String(view.port)],
    ["idle timeout", view.idle_timeout ?? "(model or config default)"],
    ["created", view.created_at],
    ["state since", view.state_changed_at],
    ["last activity", view.last_activity_at ?? "-"],
  ];
  rows.push([
    "limits",
    LIMIT_KEYS.map((key) => `${key}=${formatLimit(key, view.limits[key])}`).join(" ") +
      (view.limits.enforced ? "" : " (not enforced: no cgroups here, see acc status)"),
  ]);
  if (view.memory_bytes !== null)
    rows.push(["memory", `${Math.round(view.memory_bytes / 1024 ** 2)} MB (its cgroup)`]);
  if (view.oom_kills > 0) rows.push(["oom kills", `${view.oom_kills} (over its memory limit)`]);
  if (view.last_error) rows.push(["last error", view.last_error]);
  const loop = view.crash_loop;
  if (loop !== null) {
    rows.push([
      "restarts",
      loop.retry_at === null
        ? `none: failed ${loop.failures} times in a row (acc start ${view.name} tries again)`
        : `failed ${loop.failures} times in a row; next automatic start from ${loop.retry_at}`,
    ]);
  }
  if (view.last_log) rows.push(["last log", view.last_log.split("\n").join("\n  ")]);
  if (view.exposed_listeners !== null && view.exposed_listeners.length > 0)
    rows.push(["warning", describeExposedEndpoints(view.exposed_listeners)]);
  for (const [key, value] of Object.entries(view.params)) rows.push([`param ${key}`, value]);
  for (const [key, value] of Object.entries(view.env ?? {})) rows.push([`env ${key}`, value]);
  return rows;
}

export const showOperation: Operation<ShowInput, ShownInstance> = {
  id: "instance.show",
  summary: "Show one instance in full.",
  method: "GET",
  path: "/instances/{name}",
  input: {
    type: "object",
    properties: {
      name: NAME,
      secrets: {
        type: "boolean",
        description: "also give the generated secrets and env file values (admin only)",
      },
    },
    required: ["name"],
    additionalProperties: false,
  },
  output: {
    allOf: [
      INSTANCE,
      {
        type: "object",
        properties: {
          exposed_listeners: { type: ["array", "null"], items: { type: "string" } },
          crash_loop: { type: ["object", "null"] },
          last_log: { type: ["string", "null"] },
          limits: { type: "object" },
          memory_bytes: { type: ["integer", "null"] },
          oom_kills: { type: "integer" },
          env: { type: "object", additionalProperties: { type: "string" } },
        },
      },
    ],
  },
  errors: ["ACC_NOT_FOUND"],
  permission: (input) => (input.secrets === true ? "secret" : "read"),
  instanceToken: true,
  async run(call, input) {
    const { showInstanceView } = await import("../services/instance-view.js");
    // A token with scope read sees no secrets: its permission check refused them already.
    return showInstanceView(call.ctx, validateInstanceName(input.name), {
      secrets: input.secrets === true,
    });
  },
  cli: {
    name: "show",
    usage: "NAME [--json] [--secrets]",
    help: ["--secrets           also show the generated secrets and env file values"],
    options: { secrets: { type: "boolean" } },
    positionals: { min: 1, max: 1, names: "NAME" },
    json: true,
    input: (args) => ({
      name: validateInstanceName(positional(args, 0)),
      ...(flag(args, "secrets") ? { secrets: true } : {}),
    }),
    render: (view) => {
      const rows = showRows(view);
      const width = Math.max(...rows.map(([key]) => key.length));
      return { text: rows.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join("\n") };
    },
  },
};
