import { formatDuration } from "../core/duration.js";
import { validateInstanceName } from "../core/validate.js";
import { AccError } from "../lib/errors.js";
import type { EventRecord } from "../store/store.js";
import { flag, stringOption } from "../cli/command.js";
import { table } from "../cli/output.js";
import { EVENT, NAME } from "./schemas.js";
import type { Operation } from "./types.js";

/** The stable JSON shape of an event for scripts. */
export interface EventJson {
  id: number;
  time: string;
  instance: string | null;
  action: string;
  cause: string | null;
  outcome: string;
  duration_ms: number | null;
  message: string | null;
}

const DEFAULT_COUNT = 50;
const MAX_COUNT = 100_000;

export function eventJson(event: EventRecord): EventJson {
  return {
    id: event.id,
    time: event.time,
    instance: event.instance,
    action: event.action,
    cause: event.cause,
    outcome: event.outcome,
    duration_ms: event.durationMs,
    message: event.message,
  };
}

/** Local time to the second: the events of a day line up, and the sysadmin reads server time. */
function localTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number): string => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

export function renderEvents(events: readonly EventJson[]): string {
  return table(
    ["TIME", "INSTANCE", "ACTION", "CAUSE", "OUTCOME", "DURATION", "MESSAGE"],
    events.map((e) => [
      localTime(e.time),
      e.instance ?? "-",
      e.action,
      e.cause ?? "-",
      e.outcome,
      e.duration_ms === null ? "-" : formatDuration(e.duration_ms),
      // One event, one line, whatever the message holds.
      (e.message ?? "").replace(/\s+/g, " "),
    ]),
  );
}

function parseCount(text: string): number {
  const count = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(count >= 1 && count <= MAX_COUNT)) {
    throw new AccError("ACC_USAGE", `acc events: invalid event count ${JSON.stringify(text)}`, {
      hint: `use a whole number from 1 to ${MAX_COUNT}`,
    });
  }
  return count;
}

interface EventsInput {
  name?: string;
  lines?: number;
  follow?: boolean;
  /** With follow: the events after this one. */
  after?: number;
}

export const eventsOperation: Operation<EventsInput, EventJson[]> = {
  id: "event.list",
  summary:
    "Show the latest events (starts, stops and why, creates, destroys...), of all instances or of one, destroyed ones included.",
  method: "GET",
  path: "/events",
  input: {
    type: "object",
    properties: {
      name: { ...NAME, description: "only this instance's events" },
      lines: {
        type: "integer",
        minimum: 1,
        maximum: MAX_COUNT,
        default: DEFAULT_COUNT,
        description: "how many events, the latest ones",
      },
      follow: {
        type: "boolean",
        description:
          "server-sent events: each new event as it is recorded, until the client leaves",
      },
      after: { type: "integer", minimum: 0, description: "with follow: the events after this id" },
    },
    additionalProperties: false,
  },
  output: { type: "array", items: EVENT },
  stream: { event: EVENT },
  errors: ["ACC_NOT_FOUND"],
  permission: "read",
  instanceToken: true,
  async run(call, input) {
    const name = input.name === undefined ? undefined : validateInstanceName(input.name);
    const limit = input.lines ?? DEFAULT_COUNT;
    const { store } = call.ctx;
    const events = (
      await store.listEvents(name === undefined ? { limit } : { instance: name, limit })
    ).map(eventJson);
    // Events outlive their instance; a name with neither is a typo.
    if (name !== undefined && events.length === 0 && !(await store.getInstance(name))) {
      throw new AccError(
        "ACC_NOT_FOUND",
        `no instance named ${JSON.stringify(name)}, and no events of one`,
        {
          hint: "acc list shows the instances; acc events shows every event",
        },
      );
    }
    return events;
  },
  async follow(call, input, send) {
    const name = input.name === undefined ? undefined : validateInstanceName(input.name);
    const { store } = call.ctx;
    let after = input.after ?? (await store.listEvents({ limit: 1 }))[0]?.id ?? 0;
    while (!call.signal.aborted) {
      const events = await store.listEvents({
        limit: 1000,
        afterId: after,
        ...(name === undefined ? {} : { instance: name }),
      });
      for (const event of events) {
        send(eventJson(event));
        after = event.id;
      }
      if (events.length < 1000) await new Promise((resolve) => setTimeout(resolve, 500));
    }
  },
  cli: {
    name: "events",
    usage: "[NAME] [--json] [-n N] [-f]",
    help: [
      `-n, --lines N       how many events, the latest ones (default ${DEFAULT_COUNT})`,
      "-f, --follow        keep printing new events until Ctrl-C",
    ],
    options: { lines: { type: "string", short: "n" }, follow: { type: "boolean", short: "f" } },
    positionals: { min: 0, max: 1, names: "NAME" },
    json: true,
    input(args) {
      const nameArg = args.positionals[0];
      return {
        ...(nameArg === undefined ? {} : { name: validateInstanceName(nameArg) }),
        lines: parseCount(stringOption(args, "lines") ?? String(DEFAULT_COUNT)),
        ...(flag(args, "follow") ? { follow: true } : {}),
      };
    },
    render: (events) => ({ text: events.length === 0 ? "no events yet" : renderEvents(events) }),
    renderEvent: (event) => `${renderEvents([event as EventJson]).split("\n")[1] ?? ""}\n`,
    followFrom: (events) => ({ after: events.at(-1)?.id ?? 0 }),
  },
};
