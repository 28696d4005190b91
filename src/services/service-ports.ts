// The ports of acc's own services (nginx's http_port, acc server's server_port, the managed
// Postgres's postgres_port): free or not, and who holds one, another acc home included.
import { createServer } from "node:net";
import { AccError, hasErrno } from "../lib/errors.js";
import { processEnviron, readProcFile } from "../lib/processes.js";
import { describePortHolders, portHolders } from "./listeners.js";

export type ServicePortKey = "http_port" | "server_port" | "postgres_port";

export interface ServicePort {
  key: ServicePortKey;
  port: number;
  /** The address the service binds. */
  host: string;
}

/**
 * Whether this port can be bound on host now. Bound as a server does (SO_REUSEADDR), so
 * connections lingering in TIME_WAIT do not count; a port below 1024 as a normal user counts
 * as free (the service's own start says why it cannot have it).
 */
export function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error) => {
      if (hasErrno(error, "EADDRINUSE")) resolve(false);
      else if (hasErrno(error, "EACCES") || hasErrno(error, "EADDRNOTAVAIL")) resolve(true);
      else reject(error);
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The acc home a process belongs to, from its command line (acc's CLI and server take
 * `--home`, acc's nginx is given HOME/nginx/nginx.conf, its Postgres HOME/postgres/data) or the
 * supervisord socket in its environment; undefined when it is not acc's.
 */
export async function accHomeOf(pid: number): Promise<string | undefined> {
  const cmdline = await readProcFile(pid, "cmdline");
  if (cmdline === undefined) return undefined;
  const args = cmdline.replace(/\0+$/, "").split("\0");
  const at = args.indexOf("--home");
  if (at !== -1 && args[at + 1] !== undefined && args.some((a) => a.endsWith("acc.mjs")))
    return args[at + 1];
  const text = args.join(" ");
  const nginx = / -c (\S+)\/nginx\/nginx\.conf/.exec(text);
  if (nginx?.[1] !== undefined && text.startsWith("nginx: master")) return nginx[1];
  const postgres = / -D (\S+)\/postgres\/data\b/.exec(text);
  if (postgres?.[1] !== undefined) return postgres[1];
  const url = (await processEnviron(pid))?.get("SUPERVISOR_SERVER_URL");
  return url === undefined ? undefined : /^unix:\/\/(.+)\/run\/supervisor\.sock$/.exec(url)?.[1];
}

/** One line: the port, the config key, who holds it (pid, command) and the acc home it is of. */
export async function describeHeldPort(entry: ServicePort): Promise<string> {
  return `${entry.key}: ${await describePortHolder(entry.port)}`;
}

/** Who holds the port (pid, command) and the acc home it is of, in words. */
export async function describePortHolder(port: number): Promise<string> {
  const listeners = await portHolders(port);
  const homes = new Set<string>();
  for (const listener of listeners) {
    for (const owner of listener.owners) {
      const home = await accHomeOf(owner.pid);
      if (home !== undefined) homes.add(home);
    }
  }
  const who =
    listeners.length === 0
      ? `port ${port} is in use (no listener found: a connection, or a process closed to us)`
      : describePortHolders(port, listeners);
  const of = homes.size > 0 ? `, of the acc home ${[...homes].join(" and ")}` : "";
  return `${who}${of}`;
}

/** Throws (ACC_ENV, exit 1) with one line naming the first port that is held and its holder. */
export async function checkServicePortsFree(ports: readonly ServicePort[]): Promise<void> {
  for (const entry of ports) {
    if (await portFree(entry.port, entry.host)) continue;
    throw new AccError("ACC_ENV", await describeHeldPort(entry), {
      hint: `stop that program, or set ${entry.key} in acc.toml to a free port`,
    });
  }
}

/** The first free port from `from` on (at most `tries` of them); undefined when none is. */
export async function firstFreePort(
  from: number,
  host: string,
  options: { tries?: number; avoid?: ReadonlySet<number> } = {},
): Promise<number | undefined> {
  for (let port = from; port < from + (options.tries ?? 200) && port <= 65535; port++) {
    if (options.avoid?.has(port)) continue;
    if (await portFree(port, host)) return port;
  }
  return undefined;
}
