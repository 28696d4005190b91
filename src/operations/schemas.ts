/** JSON Schemas shared by the operations (plain data: the CLI client loads this file). */
import { INSTANCE_STATES } from "../core/states.js";
import type { JsonSchema, ObjectSchema } from "./types.js";

const nullable = (type: string): JsonSchema => ({ type: [type, "null"] });

export const NAME: JsonSchema = {
  type: "string",
  description: "an instance name: a DNS label (a-z, 0-9, '-'), at most 40 characters",
};

/** Input of an operation on one instance, named in its path. */
export const NAME_INPUT: ObjectSchema = {
  type: "object",
  properties: { name: NAME },
  required: ["name"],
  additionalProperties: false,
};

export const NO_INPUT: ObjectSchema = {
  type: "object",
  properties: {},
  additionalProperties: false,
};

/** An instance as scripts see it (`acc show --json`, `acc list --json`). */
export const INSTANCE: JsonSchema = {
  type: "object",
  required: ["name", "model", "model_version", "state", "url", "hosts", "port", "params"],
  properties: {
    name: { type: "string" },
    model: { type: "string" },
    model_version: { type: "string" },
    state: { type: "string", enum: INSTANCE_STATES },
    url: { type: "string" },
    hosts: { type: "array", items: { type: "string" } },
    port: { type: "integer" },
    params: { type: "object", additionalProperties: { type: "string" } },
    idle_timeout: nullable("string"),
    created_at: { type: "string" },
    updated_at: { type: "string" },
    state_changed_at: { type: "string" },
    last_activity_at: nullable("string"),
    last_error: nullable("string"),
  },
};

/** Under tls = "acme", after a create or a host change: the certificate, or why none yet. */
export const CERTIFICATE_OUTCOME: JsonSchema = {
  type: "object",
  required: ["issued", "message"],
  properties: { issued: { type: "boolean" }, message: { type: "string" } },
};

export const EVENT: JsonSchema = {
  type: "object",
  required: ["id", "time", "instance", "action", "cause", "outcome", "duration_ms", "message"],
  properties: {
    id: { type: "integer" },
    time: { type: "string" },
    instance: nullable("string"),
    action: { type: "string" },
    cause: nullable("string"),
    outcome: { type: "string" },
    duration_ms: nullable("integer"),
    message: nullable("string"),
  },
};

export const BACKUP: JsonSchema = {
  type: "object",
  required: ["id", "instance", "created_at", "bytes", "database", "reason"],
  properties: {
    id: { type: "string" },
    instance: { type: "string" },
    created_at: { type: "string" },
    bytes: { type: "integer" },
    database: { type: "boolean" },
    reason: { type: "string" },
  },
};
