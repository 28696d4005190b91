import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import { resolveConfig, type AccConfig } from "../core/config.js";
import { homePaths } from "../core/paths.js";
import { createNginx } from "../drivers/nginx/index.js";
import { createPortKeeper } from "../drivers/ports/index.js";
import { createSupervisor } from "../drivers/supervisord/index.js";
import { AccError, hasErrno } from "../lib/errors.js";
import { exec } from "../lib/exec.js";
import { isRootUser } from "../lib/home.js";
import { openSqliteStore } from "../store/open.js";
import type { AccContext, Progress } from "./context.js";
import { storeMutex } from "./leases.js";
import { createModelRegistry } from "./models.js";
import { createUsers } from "./users.js";

export async function loadConfig(home: string, env: NodeJS.ProcessEnv): Promise<AccConfig> {
  const file = homePaths(home).config;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (hasErrno(error, "ENOENT")) {
      throw new AccError("ACC_NOT_FOUND", `${home} is not an acc home (no acc.toml)`, {
        hint: `run acc init${home === "/var/lib/acc" ? "" : ` --home ${home}`} first`,
      });
    }
    throw error;
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = parseToml(text);
  } catch (error) {
    if (error instanceof TomlError) {
      throw new AccError(
        "ACC_INVALID",
        `${file}:${error.line}: ${error.message.split("\n")[0] ?? ""}`,
      );
    }
    throw error;
  }
  return resolveConfig(parsed, env, isRootUser());
}

export interface OpenOptions {
  home: string;
  env: NodeJS.ProcessEnv;
  accRoot: string;
  progress?: Progress;
}

const quiet: Progress = { step: () => undefined };

function createProxy(
  paths: AccContext["paths"],
  store: AccContext["store"],
  config: AccConfig,
  isRoot: boolean,
): AccContext["proxy"] {
  return createNginx({
    paths,
    exec,
    mutex: storeMutex(store),
    config: {
      listenAddress: config.listen_address,
      httpPort: config.http_port,
      adminHost: config.admin_host,
      isRoot,
      nginxUser: config.nginx_user,
      instancePorts: { min: config.instance_port_min, max: config.instance_port_max },
      requestTimeout: Math.ceil(config.request_timeout / 1000),
      ...(config.tls === "off"
        ? {}
        : {
            https: {
              port: config.https_port,
              redirect: config.http_redirect,
              domain: config.domain,
              acme: config.tls === "acme",
            },
          }),
    },
  });
}

/** acc.toml as last read for a long-lived context (acc server): its mtime and size. */
const configSeen = new WeakMap<AccContext, string>();

/**
 * Reads acc.toml again when it changed since this context last read it, as every CLI command
 * did when it ran on its own: acc server runs them now, for as long as it runs. The store
 * (state_url) stays the one opened; ports and addresses of acc's own services need acc boot.
 */
export async function refreshConfig(ctx: AccContext, env: NodeJS.ProcessEnv): Promise<void> {
  const info = await stat(ctx.paths.config);
  const seen = `${info.mtimeMs}:${info.size}`;
  if (configSeen.get(ctx) === seen) return;
  configSeen.set(ctx, seen);
  const config = await loadConfig(ctx.home, env);
  ctx.config = config;
  ctx.proxy = createProxy(ctx.paths, ctx.store, config, ctx.isRoot);
}

/** Builds every dependency of the services for one home; nothing here starts a process. */
export async function openContext(options: OpenOptions): Promise<AccContext> {
  const { home, env, accRoot } = options;
  const configStat = await stat(homePaths(home).config).catch(() => undefined);
  const config = await loadConfig(home, env);
  const paths = homePaths(home);
  // Loaded only when used: pg costs start-up time that SQLite homes should not pay.
  const store =
    config.state_url === ""
      ? openSqliteStore(paths.store)
      : (await import("../store/postgres.js")).openPostgresStore(config.state_url);
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  const isRoot = isRootUser();
  const context: AccContext = {
    home,
    paths,
    config,
    isRoot,
    store,
    models: createModelRegistry({
      bundledDir: path.join(accRoot, "models"),
      userDir: paths.models,
    }),
    processes: createSupervisor({ paths, exec }),
    proxy: createProxy(paths, store, config, isRoot),
    ports: createPortKeeper({ socketPath: paths.portsSocket }),
    users: createUsers({ exec }),
    exec,
    progress: options.progress ?? quiet,
    accRoot,
    now: () => new Date(),
    manifests: new Map(),
    cache: {},
  };
  if (configStat) configSeen.set(context, `${configStat.mtimeMs}:${configStat.size}`);
  return context;
}
