// How an instance's processes are started: libexec/acc-launch with the instance's launch spec.
// supervisord runs it for the app, acc for the setup step; it drops to the instance's user and
// enters the sandbox, so nothing of the instance ever runs as root.
import path from "node:path";
import type { ModelManifest } from "../core/model.js";
import { instancePaths } from "../core/paths.js";
import { commandArgv, renderLaunchSpec, sandboxArgs, type LaunchSpec } from "../core/sandbox.js";
import { writeFileAtomic } from "../lib/files.js";
import type { AccContext } from "./context.js";
import { BWRAP, readHostLayout, sandboxState } from "./sandbox.js";
import { instanceCgroups } from "./cgroups.js";
import type { UserIds } from "./users.js";

/** Perl is in every Debian (perl-base is essential); acc-launch loads no module. */
const PERL = "/usr/bin/perl";

/** The argv that runs an instance's app ("run"), its setup or its upgrade step, as its spec says. */
export function launcherArgv(
  ctx: AccContext,
  name: string,
  what: "run" | "setup" | "upgrade",
): string[] {
  return [
    PERL,
    path.join(ctx.accRoot, "libexec", "acc-launch"),
    instancePaths(ctx.home, name).launch,
    what,
  ];
}

/** The launch spec of an instance, made from its manifest (pure but for the host facts given). */
export async function buildLaunchSpec(
  ctx: AccContext,
  instance: { name: string; port: number },
  manifest: ModelManifest,
  codeDir: string,
  ids: UserIds | undefined,
): Promise<LaunchSpec> {
  const p = instancePaths(ctx.home, instance.name);
  const sandbox = (await sandboxState(ctx)).enabled
    ? sandboxArgs({
        bwrap: BWRAP,
        host: await readHostLayout(),
        instanceRoot: p.root,
        dataDir: p.data,
        codeDir,
        readOnly: manifest.sandbox.read_only,
        readWrite: manifest.sandbox.read_write,
      })
    : undefined;
  const run = commandArgv(manifest.command);
  const cgroups = (await instanceCgroups(ctx))?.dirs(instance.name);
  const spec: LaunchSpec = {
    arch: process.arch,
    ...(cgroups ? { cgroups } : {}),
    ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
    envFile: p.env,
    chdir: codeDir,
    port: { port: instance.port, mode: manifest.socket_activation ? "activate" : "lend" },
    keeper: ctx.paths.portsSocket,
    run: run.argv,
    ...(sandbox ? { sandbox } : {}),
    ...(manifest.setup ? { setup: ["/bin/sh", "-c", manifest.setup.command] } : {}),
    ...(manifest.upgrade ? { upgrade: ["/bin/sh", "-c", manifest.upgrade.command] } : {}),
  };
  // The app's pid is known only when it is exec'd directly: pid 2 in the sandbox's PID
  // namespace (bubblewrap's reaper is 1), or acc-launch's own pid without a sandbox.
  if (manifest.socket_activation && run.direct) spec.listenPid = sandbox ? 2 : "self";
  return spec;
}

/** Writes the instance's launch spec (root-only, in its root-owned folder). */
export async function writeLaunchSpec(
  ctx: AccContext,
  instance: { name: string; port: number },
  manifest: ModelManifest,
  codeDir: string,
  ids: UserIds | undefined,
): Promise<void> {
  const spec = await buildLaunchSpec(ctx, instance, manifest, codeDir, ids);
  await writeFileAtomic(instancePaths(ctx.home, instance.name).launch, renderLaunchSpec(spec), {
    mode: 0o600,
  });
}
