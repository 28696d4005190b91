import type { NewEvent } from "../store/store.js";
import type { AccContext } from "./context.js";

/** An event as the store recorded it: its time is always set. */
export type ObservedEvent = NewEvent & { time: string };

export type EventListener = (event: ObservedEvent) => void;

/**
 * Calls `listener` with every event this process records through ctx.store, once the store has
 * it: metrics (and anything else in `acc server` that follows events) then count the same facts
 * as `acc events`, from one place, without a hook in each service. It replaces ctx.store with a
 * wrapper, so call it before the context is handed to anything that copies it. The listener
 * runs in the recording operation's path: it must be quick and must not throw.
 */
export function observeEvents(ctx: AccContext, listener: EventListener): void {
  const inner = ctx.store;
  ctx.store = {
    ...inner,
    async addEvent(event, now) {
      await inner.addEvent(event, now);
      listener({ ...event, time: event.time ?? now });
    },
  };
}
