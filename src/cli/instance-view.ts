import { formatDuration } from "../core/duration.js";
import type { AccContext } from "../services/context.js";
import { urlOf } from "../services/instances.js";
import type { InstanceRecord } from "../store/store.js";

/** The stable JSON shape of an instance for scripts. */
export interface InstanceJson {
  name: string;
  model: string;
  model_version: string;
  state: string;
  url: string;
  hosts: string[];
  port: number;
  params: Record<string, string>;
  idle_timeout: string | null;
  created_at: string;
  updated_at: string;
  state_changed_at: string;
  last_activity_at: string | null;
  last_error: string | null;
}

export function instanceJson(ctx: AccContext, instance: InstanceRecord): InstanceJson {
  return {
    name: instance.name,
    model: instance.model,
    model_version: instance.modelVersion,
    state: instance.state,
    url: urlOf(ctx, instance),
    hosts: instance.hosts,
    port: instance.port,
    params: instance.params,
    idle_timeout: instance.idleTimeout === undefined ? null : formatDuration(instance.idleTimeout),
    created_at: instance.createdAt,
    updated_at: instance.updatedAt,
    state_changed_at: instance.stateChangedAt,
    last_activity_at: instance.lastActivityAt,
    last_error: instance.lastError,
  };
}
