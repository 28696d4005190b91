import { flag, positional, stringOption, type ParsedArgs } from "../cli/command.js";
import { ago, table } from "../cli/output.js";
import { describeExposedEndpoints } from "../core/exposure.js";
import { formatLimit, LIMIT_KEYS } from "../core/limits.js";
import { INSTANCE_STATES, isInstanceState } from "../core/states.js";
import { showValue, validateInstanceName, validateModelName } from "../core/validate.js";
import { AccError } from "../lib/errors.js";
import type { ListedInstance, ListQuery, ShownInstance } from "../services/instance-view.js";
import { INSTANCE, NAME } from "./schemas.js";
import type { Operation } from "./types.js";

const LIST_SORTS = ["name", "activity", "memory"] as const;
type ListSort = (typeof LIST_SORTS)[number];
/** The longest host name: no name or host holds a longer substring. */
const MAX_SEARCH = 253;
const MAX_LIMIT = 100_000;
const MAX_OFFSET = 1_000_000_000;

interface ListInput {
  q?: string;
  state?: string;
  model?: string;
  sort?: string;
  limit?: number;
  offset?: number;
}

/**
 * The input as a store query, each value checked (the API's schema checks them too, but a
 * command run without acc server has only this): a bad one is ACC_INVALID naming it.
 */
function listQuery(input: ListInput): ListQuery {
  const query: ListQuery = {};
  if (input.q !== undefined && input.q !== "") {
    if (input.q.length > MAX_SEARCH) {
      throw new AccError("ACC_INVALID", `search text too long: ${showValue(input.q)}`, {
        hint: `search at most ${MAX_SEARCH} characters of a name or host`,
      });
    }
    query.search = input.q;
  }
  if (input.state !== undefined) {
    if (!isInstanceState(input.state)) {
      throw new AccError("ACC_INVALID", `invalid state ${showValue(input.state)}`, {
        hint: `use one of ${INSTANCE_STATES.join(", ")}`,
      });
    }
    query.state = input.state;
  }
  if (input.model !== undefined) query.model = validateModelName(input.model);
  if (input.sort !== undefined) {
    if (!(LIST_SORTS as readonly string[]).includes(input.sort)) {
      throw new AccError("ACC_INVALID", `invalid sort key ${showValue(input.sort)}`, {
        hint: `use one of ${LIST_SORTS.join(", ")}`,
      });
    }
    query.sort = input.sort as ListSort;
  }
  const whole = (value: number | undefined, what: string, min: number, max: number) => {
    if (value === undefined) return undefined;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new AccError("ACC_INVALID", `invalid ${what} ${showValue(String(value))}`, {
        hint: `use a whole number from ${min} to ${max}`,
      });
    }
    return value;
  };
  const limit = whole(input.limit, "limit", 1, MAX_LIMIT);
  const offset = whole(input.offset, "offset", 0, MAX_OFFSET);
  if (limit !== undefined) query.limit = limit;
  if (offset !== undefined && offset > 0) query.offset = offset;
  return query;
}

/** --limit and --offset: digits only, so "1e3", "0x10" and " 5" are refused, not guessed. */
function wholeOption(args: ParsedArgs, key: string): number | undefined {
  const text = stringOption(args, key);
  if (text === undefined) return undefined;
  if (!/^\d{1,10}$/.test(text)) {
    throw new AccError("ACC_USAGE", `acc list: invalid --${key} ${showValue(text)}`, {
      hint: "use a whole number",
    });
  }
  return Number(text);
}

function listInput(args: ParsedArgs): ListInput {
  const input: ListInput = {};
  const q = stringOption(args, "search");
  const state = stringOption(args, "state");
  const model = stringOption(args, "model");
  const sort = stringOption(args, "sort");
  const limit = wholeOption(args, "limit");
  const offset = wholeOption(args, "offset");
  if (q !== undefined) input.q = q;
  if (state !== undefined) input.state = state;
  if (model !== undefined) input.model = model;
  if (sort !== undefined) input.sort = sort;
  if (limit !== undefined) input.limit = limit;
  if (offset !== undefined) input.offset = offset;
  // Checked here too, so a bad value is refused before anything is asked of the server.
  listQuery(input);
  return input;
}

export const listOperation: Operation<ListInput, ListedInstance[]> = {
  id: "instance.list",
  summary: "List the instances: name, state, URL, last activity, memory.",
  method: "GET",
  path: "/instances",
  input: {
    type: "object",
    properties: {
      q: {
        type: "string",
        maxLength: MAX_SEARCH,
        description: "only those whose name or a host holds this text (any case)",
      },
      state: { type: "string", enum: INSTANCE_STATES, description: "only those in this state" },
      model: {
        type: "string",
        maxLength: 63,
        pattern: "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
        description: "only the instances of this model",
      },
      sort: {
        type: "string",
        enum: LIST_SORTS,
        default: "name",
        description:
          "name; activity: the latest last activity first, never active last; memory: the largest first, those without a figure (not running) last, then by name",
      },
      limit: {
        type: "integer",
        minimum: 1,
        maximum: MAX_LIMIT,
        description: "at most this many, after filtering and sorting (default: all)",
      },
      offset: {
        type: "integer",
        minimum: 0,
        maximum: MAX_OFFSET,
        description: "skip this many first",
      },
    },
    additionalProperties: false,
  },
  output: {
    type: "array",
    items: {
      allOf: [
        INSTANCE,
        {
          type: "object",
          properties: {
            memory_mb: { type: ["integer", "null"] },
            certificate_warning: {
              type: ["string", "null"],
              description: "when tls is not off: what needs a look about its certificate",
            },
          },
        },
      ],
    },
  },
  errors: [],
  permission: "read",
  async run(call, input) {
    const { listInstancesView } = await import("../services/instance-view.js");
    return listInstancesView(call.ctx, listQuery(input));
  },
  cli: {
    name: "list",
    usage:
      "[--search TEXT] [--state STATE] [--model MODEL] [--sort name|activity|memory] [--limit N] [--offset N] [--json]",
    help: [
      "--search TEXT       only instances whose name or a host holds TEXT (any case)",
      "--state STATE       only instances in this state (running, stopped, failed...)",
      "--model MODEL       only instances of this model",
      "--sort KEY          name (default), activity (latest first) or memory (largest first)",
      "--limit N           at most N instances, after filtering and sorting",
      "--offset N          skip the first N",
    ],
    options: {
      search: { type: "string" },
      state: { type: "string" },
      model: { type: "string" },
      sort: { type: "string" },
      limit: { type: "string" },
      offset: { type: "string" },
    },
    positionals: { min: 0, max: 0, names: "" },
    json: true,
    pipeJson: true,
    input: listInput,
    render: (instances, input, { now }) => ({
      text: () =>
        instances.length === 0
          ? Object.keys(input).length > 0
            ? "no instances match"
            : "no instances yet: acc create hello"
          : [
              table(
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
              ...instances
                .filter((i) => i.certificate_warning)
                .map((i) => `warning: ${i.name}: ${i.certificate_warning}`),
            ].join("\n"),
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
  const cert = view.certificate;
  if (cert !== null) {
    rows.push([
      "certificate",
      cert.source === "none"
        ? "none (served over HTTP)"
        : `${cert.source}, valid until ${cert.not_after}${cert.failures > 0 ? `; ${cert.failures} failed renewal(s), next try from ${cert.next_attempt}` : ""}`,
    ]);
    if (cert.warning !== null) rows.push(["warning", cert.warning]);
  }
  const upgrade = view.last_upgrade;
  if (upgrade !== null) {
    rows.push([
      "last upgrade",
      upgrade.phase === "committed"
        ? `${upgrade.from} to ${upgrade.to} at ${upgrade.finished_at ?? "?"} (acc rollback ${view.name} goes back to ${upgrade.from})`
        : `${upgrade.from} to ${upgrade.to}, interrupted (acc doctor --repair rolls it back)`,
    ]);
  }
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
          last_upgrade: {
            type: ["object", "null"],
            description: "its last upgrade while acc rollback may undo it (phase committed)",
            properties: {
              from: { type: "string" },
              to: { type: "string" },
              phase: { type: "string", enum: ["changing", "committed", "rolling-back"] },
              finished_at: { type: ["string", "null"] },
              backup: { type: "string", description: "the pre-upgrade backup" },
            },
          },
          certificate: {
            type: ["object", "null"],
            properties: {
              source: { type: "string", enum: ["acme", "manual", "wildcard", "none"] },
              not_after: { type: ["string", "null"] },
              failures: { type: "integer" },
              last_error: { type: ["string", "null"] },
              next_attempt: { type: ["string", "null"] },
              warning: { type: ["string", "null"] },
            },
          },
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
