// supervisord's event listener protocol (supervisord.org/events.html): the listener writes
// READY, supervisord sends one header line ("ver:3.0 ... eventname:X len:N") and N bytes of
// payload, the listener answers "RESULT 2\nOK" and is READY again.
import { isValidInstanceName } from "../../core/validate.js";

export const LISTENER_READY = "READY\n";
export const LISTENER_OK = "RESULT 2\nOK";

export interface SupervisorEvent {
  /** PROCESS_STATE_EXITED, ... */
  name: string;
  /** The payload's first line, as key:value tokens (processname, groupname, pid, ...). */
  fields: Record<string, string>;
}

/** "a:1 b:2" as { a: "1", b: "2" }. */
export function parseTokens(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const token of line.trim().split(" ")) {
    const colon = token.indexOf(":");
    if (colon > 0) out[token.slice(0, colon)] = token.slice(colon + 1);
  }
  return out;
}

/** The complete events at the start of buffer, and what is left of it (a partial event). */
export function takeEvents(buffer: Buffer): { events: SupervisorEvent[]; rest: Buffer } {
  const events: SupervisorEvent[] = [];
  let at = 0;
  for (;;) {
    const newline = buffer.indexOf(10, at);
    if (newline < 0) break;
    const header = parseTokens(buffer.subarray(at, newline).toString("utf8"));
    const length = Number(header.len);
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new Error(`bad event header from supervisord: ${JSON.stringify(header)}`);
    }
    if (buffer.length < newline + 1 + length) break;
    const payload = buffer.subarray(newline + 1, newline + 1 + length).toString("utf8");
    events.push({
      name: header.eventname ?? "",
      fields: parseTokens(payload.split("\n")[0] ?? ""),
    });
    at = newline + 1 + length;
  }
  return { events, rest: buffer.subarray(at) };
}

/** The instance whose program an event is about, or undefined for acc's own services. */
export function instanceOfEvent(event: SupervisorEvent): string | undefined {
  const group = event.fields.groupname ?? "";
  if (!group.startsWith("i-")) return undefined;
  const name = group.slice(2);
  return isValidInstanceName(name) ? name : undefined;
}
