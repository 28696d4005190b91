import type { AccConfig } from "../core/config.js";
import type { HomePaths } from "../core/paths.js";
import type { Nginx } from "../drivers/nginx/index.js";
import type { PortKeeper } from "../drivers/ports/index.js";
import type { Supervisor } from "../drivers/supervisord/index.js";
import type { Exec } from "../lib/exec.js";
import type { Store } from "../store/store.js";
import type { ModelRegistry } from "./models.js";
import type { Users } from "./users.js";

export interface Progress {
  /** A step under way, shown on a TTY only. */
  step(text: string): void;
  /** What a program run for the user prints (a setup step), shown on a TTY only, escaped. */
  output?(text: string): void;
}

/** Everything services need, passed in (style.md): no module-level singletons. */
export interface AccContext {
  home: string;
  paths: HomePaths;
  config: AccConfig;
  isRoot: boolean;
  store: Store;
  models: ModelRegistry;
  /** acc's supervisord: instance programs and acc's own services. */
  processes: Supervisor;
  /** acc's nginx: per-instance routing. */
  proxy: Nginx;
  /** acc-ports: holds the ports of instances that are not running. */
  ports: PortKeeper;
  users: Users;
  exec: Exec;
  progress: Progress;
  /**
   * Who asked for what is done with this context, for its events: "cli" when unset (the command
   * line, or the local API socket), `token:NAME` for a call made with an API token.
   */
  cause?: string;
  /** Folder of acc's own installation (bundled models, package.json). */
  accRoot: string;
  now(): Date;
  /** Manifests of instances' code folders, which never change once written (see instanceManifest). */
  manifests: Map<string, import("../core/model.js").ModelManifest>;
  /** Connections made on first use and kept for the context's life. */
  cache: {
    pgAdmin?: Promise<import("../drivers/postgres/index.js").PgAdmin>;
    sandbox?: Promise<import("./sandbox.js").SandboxState>;
    cgroups?: Promise<import("./cgroups.js").CgroupsState>;
    acme?: import("./acme.js").AcmeCache;
  };
}
