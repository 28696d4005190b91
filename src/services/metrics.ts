import { readFileSync } from "node:fs";
import path from "node:path";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { certificateExpiries } from "./acme.js";
import { INSTANCE_STATES } from "../core/states.js";
import { hasErrno } from "../lib/errors.js";
import type { AccContext } from "./context.js";
import { runningMemory } from "./memory.js";
import type { ObservedEvent } from "./observe-events.js";

// Every label value comes from a fixed set (or the models, which the sysadmin installs), so the
// number of series stays bounded whatever the events say: anything else is counted as "other".
// "token": made through the API with a token (the event's cause is token:NAME).
const START_CAUSES = ["cli", "api", "token", "wake", "create", "restore", "boot"] as const;
const STOP_CAUSES = [
  "cli",
  "api",
  "token",
  "idle",
  "evict",
  "suspend",
  "destroy",
  "restore",
  "shutdown",
  "boot",
] as const;
const CRASH_CAUSES = ["exit", "signal", "oom"] as const;
const OUTCOMES = ["ok", "failed", "skipped", "warning"] as const;
const OTHER = "other";

/** Seconds; a wake past 120 s has failed its start timeout long before (default 60 s). */
export const WAKE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120];

/**
 * One of `known`, else "other". A cause may carry a detail after a colon (token:NAME, the API
 * token that asked): only the part before it is a label value.
 */
export function boundedLabel(value: string | null, known: readonly string[]): string {
  const head = (value ?? "").split(":")[0] ?? "";
  return known.includes(head) ? head : OTHER;
}

export interface MetricsOptions {
  /** acc_instance_memory_bytes{instance}: one series per running instance (config metrics_instance_memory). */
  instanceMemory: boolean;
}

export interface Metrics {
  /** This object's own registry (never prom-client's global one). */
  registry: Registry;
  /** Content-Type of what render() returns (Prometheus text format 0.0.4). */
  contentType: string;
  /** Every metric in Prometheus text format; the store-backed ones are read now. */
  render(): Promise<string>;
  /** Feeds one recorded event to the counters (give it to observeEvents). Never throws. */
  onEvent: (event: ObservedEvent) => void;
  /** Requests the waker holds now, waiting for their instance to start. */
  heldRequests: { inc: () => void; dec: () => void };
}

/** acc's version from its package.json; "unknown" when that is not there (a test's accRoot). */
function accVersion(accRoot: string): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(accRoot, "package.json"), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return "unknown";
    throw error;
  }
}

/**
 * acc server's Prometheus metrics. Counters follow the events this process records (see
 * observeEvents), so they count what `acc events` shows, from this server's start; gauges of
 * state (instances by state, last backup, memory) are read from the store at each scrape, so
 * they also see what other processes did.
 */
export function createMetrics(ctx: AccContext, options: MetricsOptions): Metrics {
  const registry = new Registry();
  const registers = [registry];

  new Gauge({
    name: "acc_instances",
    help: "Instances by state.",
    labelNames: ["state"],
    registers,
    async collect() {
      const counts = await ctx.store.countByState();
      for (const state of INSTANCE_STATES) this.set({ state }, counts.get(state) ?? 0);
    },
  });

  const wakeDuration = new Histogram({
    name: "acc_wake_duration_seconds",
    help: "How long the start of a woken instance took, to its passed health check (or failure).",
    labelNames: ["model", "outcome"],
    buckets: WAKE_BUCKETS,
    registers,
  });
  const wakes = new Counter({
    name: "acc_wakes_total",
    help: "Starts of an instance by a request (the waker), by model and outcome.",
    labelNames: ["model", "outcome"],
    registers,
  });
  const held = new Gauge({
    name: "acc_requests_held",
    help: "Requests the waker holds now, waiting for their instance to start.",
    registers,
  });
  const starts = new Counter({
    name: "acc_starts_total",
    help: "Instance starts, by cause (cli, api, wake, create, restore, ...) and outcome.",
    labelNames: ["cause", "outcome"],
    registers,
  });
  const stops = new Counter({
    name: "acc_stops_total",
    help: "Instance stops, by cause (cli, api, idle, evict, suspend, destroy, shutdown, ...).",
    labelNames: ["cause"],
    registers,
  });
  const crashes = new Counter({
    name: "acc_crashes_total",
    help: "Exits of an instance's process that acc did not ask for, by cause (exit, signal, oom).",
    labelNames: ["cause"],
    registers,
  });
  // Series that exist from the start, at 0, so that rate() and alerts see the first increase.
  for (const cause of START_CAUSES)
    for (const outcome of ["ok", "failed"]) starts.inc({ cause, outcome }, 0);
  for (const cause of STOP_CAUSES) stops.inc({ cause }, 0);
  for (const cause of CRASH_CAUSES) crashes.inc({ cause }, 0);

  new Gauge({
    name: "acc_backup_last_success_timestamp_seconds",
    help: "Time of the newest successful backup of any instance (0: none yet).",
    registers,
    async collect() {
      const [last] = await ctx.store.listEvents({ action: "backup", outcome: "ok", limit: 1 });
      this.set(last ? Date.parse(last.time) / 1000 : 0);
    },
  });

  new Gauge({
    name: "acc_build_info",
    help: "acc's version and the Node.js version running acc server; the value is always 1.",
    labelNames: ["version", "node"],
    registers,
  }).set({ version: accVersion(ctx.accRoot), node: process.version }, 1);

  new Gauge({
    name: "acc_certificate_expiry_timestamp_seconds",
    help: "When each instance's own certificate expires (one series per instance with one).",
    labelNames: ["instance"],
    registers,
    async collect() {
      this.reset();
      for (const [instance, seconds] of await certificateExpiries(ctx))
        this.set({ instance }, seconds);
    },
  });

  if (options.instanceMemory) {
    new Gauge({
      name: "acc_instance_memory_bytes",
      help: "Memory of each running instance (its cgroup's, else its processes' resident memory).",
      labelNames: ["instance"],
      registers,
      async collect() {
        // Only running instances have a series: a stopped one's would linger at its last value.
        this.reset();
        for (const [instance, mb] of await runningMemory(ctx))
          this.set({ instance }, Math.round(mb * 1024 * 1024));
      },
    });
  }

  // Wakes need the instance's model, which the event does not carry: looked up when the event
  // comes, and render() waits for lookups under way so a scrape never misses a recorded wake.
  const lookups = new Set<Promise<void>>();

  function countWake(event: ObservedEvent): void {
    const outcome = boundedLabel(event.outcome, OUTCOMES);
    const lookup = (
      event.instance === null ? Promise.resolve(undefined) : ctx.store.getInstance(event.instance)
    )
      .then(
        (instance) => instance?.model ?? OTHER,
        // The store failed to answer: the wake still counts, under no model.
        () => OTHER,
      )
      .then((model) => {
        wakes.inc({ model, outcome });
        if (event.durationMs !== null)
          wakeDuration.observe({ model, outcome }, event.durationMs / 1000);
      })
      .finally(() => lookups.delete(lookup));
    lookups.add(lookup);
  }

  return {
    registry,
    contentType: registry.contentType,
    async render() {
      await Promise.all([...lookups]);
      return registry.metrics();
    },
    onEvent(event) {
      switch (event.action) {
        case "start":
          starts.inc({
            cause: boundedLabel(event.cause, START_CAUSES),
            outcome: boundedLabel(event.outcome, OUTCOMES),
          });
          if (event.cause === "wake") countWake(event);
          break;
        case "stop":
          stops.inc({ cause: boundedLabel(event.cause, STOP_CAUSES) });
          break;
        case "crash":
          crashes.inc({ cause: boundedLabel(event.cause, CRASH_CAUSES) });
          break;
      }
    },
    heldRequests: {
      inc: () => held.inc(),
      dec: () => held.dec(),
    },
  };
}
