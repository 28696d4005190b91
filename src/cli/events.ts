import { formatDuration } from "../core/duration.js";
import { validateInstanceName } from "../core/validate.js";
import { AccError } from "../lib/errors.js";
import type { EventRecord } from "../store/store.js";
import { stringOption, type Command } from "./command.js";
import { table } from "./output.js";

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

export const eventsCommand: Command = {
  name: "events",
  summary:
    "Show the latest events (starts, stops and why, creates, destroys...), of all instances or of one, destroyed ones included.",
  usage: "[NAME] [--json] [-n N]",
  help: [`-n, --lines N       how many events, the latest ones (default ${DEFAULT_COUNT})`],
  options: { lines: { type: "string", short: "n" } },
  positionals: { min: 0, max: 1, names: "NAME" },
  json: true,
  async run(args, cli) {
    const nameArg = args.positionals[0];
    const name = nameArg === undefined ? undefined : validateInstanceName(nameArg);
    const limit = parseCount(stringOption(args, "lines") ?? String(DEFAULT_COUNT));
    const ctx = await cli.open();
    const events = (
      await ctx.store.listEvents(name === undefined ? { limit } : { instance: name, limit })
    ).map(eventJson);
    // Events outlive their instance; a name with neither is a typo.
    if (name !== undefined && events.length === 0 && !(await ctx.store.getInstance(name))) {
      throw new AccError(
        "ACC_NOT_FOUND",
        `no instance named ${JSON.stringify(name)}, and no events of one`,
        {
          hint: "acc list shows the instances; acc events shows every event",
        },
      );
    }
    return { data: events, text: events.length === 0 ? "no events yet" : renderEvents(events) };
  },
};
