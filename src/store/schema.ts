import type { Generated } from "kysely";

/** Tables as both SQLite and Postgres hold them: times are ISO-8601 text, lists and maps JSON text. */
export interface InstancesTable {
  name: string;
  model: string;
  model_version: string;
  /** Content hash of the model folder the instance runs: the shared code folder's key. */
  model_hash: string;
  state: string;
  /** The operation under way when state is transitional (for doctor after a crash). */
  operation: string | null;
  port: number;
  /** JSON array of host names; the hosts table enforces that each is used once. */
  hosts: string;
  /** JSON object of the non-secret parameters. */
  params: string;
  /** null: inherit from the model or config; "never"; or milliseconds as text. */
  idle_timeout: string | null;
  created_at: string;
  updated_at: string;
  state_changed_at: string;
  last_activity_at: string | null;
  last_error: string | null;
  /** Name of the instance's Postgres database (its role has the same name), or null. */
  database: string | null;
  /** JSON object of the instance's own limits (memory, cpu, pids; null: none), or null. */
  limits?: string | null;
}

export interface HostsTable {
  host: string;
  instance: string;
}

export interface EventsTable {
  id: Generated<number>;
  time: string;
  instance: string | null;
  action: string;
  cause: string | null;
  outcome: string;
  duration_ms: number | null;
  message: string | null;
}

export interface LeasesTable {
  resource: string;
  /** pid:start-time of the holding process, so a reused pid is not taken for the holder. */
  holder: string;
  token: string;
  operation: string;
  acquired_at: string;
}

export interface TokensTable {
  /** Public id, also the secret's prefix (acc_<id>_...), so a secret finds its row in one read. */
  id: string;
  name: string;
  /** admin, read or instance:NAME. */
  scope: string;
  /** SHA-256 of the whole secret, hex. */
  secret_hash: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface Database {
  instances: InstancesTable;
  hosts: HostsTable;
  events: EventsTable;
  leases: LeasesTable;
  tokens: TokensTable;
}
