import {
  createManagedPostgres,
  createPgAdmin,
  findPostgresBin,
  type ManagedPostgres,
  type PgAdmin,
  type ServiceUser,
} from "../drivers/postgres/index.js";
import { clusterLayout } from "../drivers/postgres/render.js";
import { AccError } from "../lib/errors.js";
import type { AccContext } from "./context.js";

/** The user Postgres runs as when acc is root (postgres_user); the current user otherwise. */
async function postgresUser(ctx: AccContext): Promise<ServiceUser | undefined> {
  if (!ctx.isRoot) return undefined;
  const name = ctx.config.postgres_user;
  const ids = await ctx.users.lookup(name);
  if (!ids) {
    throw new AccError("ACC_ENV", `postgres_user ${name} does not exist`, {
      hint: "acc init or acc boot creates it",
    });
  }
  return { name, ...ids };
}

/** acc's own cluster (postgres = "managed"): nothing starts here, boot runs it under supervisord. */
export async function managedPostgres(ctx: AccContext): Promise<ManagedPostgres> {
  const bin = await findPostgresBin(ctx.exec, { dataDir: clusterLayout(ctx.paths.postgres).data });
  const user = await postgresUser(ctx);
  return createManagedPostgres({
    paths: ctx.paths,
    exec: ctx.exec,
    port: ctx.config.postgres_port,
    bin,
    ...(user ? { postgresUser: user } : {}),
  });
}

/** The admin connection for instances' databases, managed or external; made once per context. */
export function pgAdmin(ctx: AccContext): Promise<PgAdmin> {
  ctx.cache.pgAdmin ??= (async () => {
    if (ctx.config.postgres === "external") {
      let bin: string | undefined;
      try {
        bin = await findPostgresBin(ctx.exec);
      } catch (error) {
        // External mode needs only pg_dump/pg_restore (backups): their absence shows there.
        if (!(error instanceof AccError)) throw error;
      }
      return createPgAdmin({
        connection: ctx.config.postgres_admin_url,
        exec: ctx.exec,
        ...(bin !== undefined ? { bin } : {}),
        hint: "check postgres_admin_url in acc.toml and that the server is up",
      });
    }
    const managed = await managedPostgres(ctx);
    const bin = await findPostgresBin(ctx.exec, { dataDir: managed.layout.data });
    return createPgAdmin({
      connection: managed.adminConnection(),
      exec: ctx.exec,
      bin,
      instanceAddress: managed.instanceAddress(),
      hint: "is acc booted? acc status shows acc-postgres",
    });
  })();
  return ctx.cache.pgAdmin;
}
