import { rename, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { instancePaths } from "../core/paths.js";
import { reservedInstanceName } from "../core/validate.js";
import { isAccError } from "../lib/errors.js";
import { readDirIfExists } from "../lib/files.js";
import { holderAlive, type InstanceRecord } from "../store/store.js";
import { describeExposed, exposedListeners } from "./bind-check.js";
import { pruneCode } from "./code-prune.js";
import { holdPort, portIntruders } from "./ports.js";
import { readTcpSockets, TCP_TIME_WAIT } from "./listeners.js";
import { describeHomeProcesses, findHomeProcesses } from "./home-processes.js";
import type { PortEntry } from "../drivers/ports/index.js";
import type { AccContext } from "./context.js";
import { removeEverywhere } from "./instances.js";
import { HOSTS_OPERATION, rewriteSite } from "./instance-hosts.js";
import { TLS_OPERATION } from "./tls-url.js";
import { instanceManifest, siteOf } from "./model-code.js";
import { withLease } from "./leases.js";
import { instanceCgroups, killCgroup, stopProcesses } from "./cgroups.js";
import { processName } from "../lib/processes.js";
import { dataOwner, legacyRestoreLeftovers, removeAsOwner } from "./instance-data.js";
import { restoresInProgress, restoreUnderWay, settleRestore } from "./restores.js";
import { interruptedUpgrades, settleUpgrade, upgradeUnderWay } from "./upgrade-journal.js";

export interface Finding {
  /** What is wrong, in words. */
  problem: string;
  /** What --repair does (or did) about it. */
  repair: string;
  repaired: boolean;
  /** Worth knowing, not a fault: doctor still exits 0 for it. */
  advisory?: boolean;
}

async function namesIn(dir: string, suffix: string): Promise<string[]> {
  return (await readDirIfExists(dir))
    .filter((f) => f.endsWith(suffix) && !f.startsWith("."))
    .map((f) => f.slice(0, f.length - suffix.length));
}

/**
 * Compares the store with supervisord, nginx and the files, and says what does not match.
 * With repair, brings them back in line: nothing with user data is deleted (an instance
 * folder without a store row is moved to backups/, not removed).
 */
export async function doctor(ctx: AccContext, repair: boolean): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = async (problem: string, fix: string, action: () => Promise<void>): Promise<void> => {
    if (repair) await action();
    findings.push({ problem, repair: fix, repaired: repair });
  };
  const now = (): string => ctx.now().toISOString();

  const leases = await ctx.store.listLeases();
  const busy = new Set(leases.filter((l) => holderAlive(l.holder)).map((l) => l.resource));
  for (const lease of leases.filter((l) => !holderAlive(l.holder))) {
    const pid = lease.holder.split(":")[0];
    // A host change writes the store, then nginx's files; a certificate change its files, then
    // nginx's: nginx's are written again from the store and the stored certificate.
    const hosts = lease.operation === HOSTS_OPERATION || lease.operation === TLS_OPERATION;
    // Taking the lease over (as any next operation would) and letting it go clears it.
    await add(
      `${lease.resource}: ${lease.operation} by pid ${pid} (since ${lease.acquiredAt}) died before it finished`,
      hosts
        ? "write its nginx files from the store again, then release its lease"
        : "release its lease",
      () =>
        withLease(
          ctx.store,
          lease.resource,
          "doctor",
          () => (hosts ? rewriteSite(ctx, lease.resource) : Promise.resolve()),
          { waitMs: 1000 },
        ),
    );
  }

  await checkRestores(ctx, busy, add);
  // After the restores (a rollback restores through one), before the instances are read.
  await checkUpgrades(ctx, busy, add);
  await checkPartialBackups(ctx, busy, add);

  const supervisorUp = await ctx.processes.isRunning();
  const programs = supervisorUp
    ? await ctx.processes.allProgramStates()
    : new Map<string, { state: string }>();
  const instances = await ctx.store.listInstances();
  const known = new Set(instances.map((i) => i.name));
  // Without supervisord, what it ran may still run (it was killed): acc boot deals with those.
  const orphans = supervisorUp ? [] : await findHomeProcesses(ctx);
  const orphaned = new Set(orphans.map((p) => p.instance).filter((n) => n !== undefined));

  /** Whatever may be left of its process goes; it is recorded stopped and wakes on demand. */
  const markStopped = async (name: string): Promise<void> => {
    if (supervisorUp) await stopProcesses(ctx, name);
    else await killCgroup(ctx, name);
    await ctx.store.updateInstance(name, { state: "stopped", operation: null }, now());
  };

  for (const instance of instances) {
    if (busy.has(instance.name)) continue; // an operation is under way: not a leftover
    const program = programs.get(instance.name);
    const alive =
      program !== undefined && (program.state === "RUNNING" || program.state === "STARTING");
    switch (instance.state) {
      case "creating":
        await add(
          `${instance.name}: a create was interrupted`,
          "undo it: remove what it made",
          () => removeEverywhere(ctx, instance.name),
        );
        continue;
      case "destroying":
        await add(
          `${instance.name}: a destroy was interrupted (its final backup was taken first)`,
          "finish the destroy",
          () => removeEverywhere(ctx, instance.name),
        );
        continue;
      case "starting":
      case "stopping":
        await checkLegacyLeftovers(ctx, instance.name, add);
        await add(
          `${instance.name}: a ${instance.state === "starting" ? "start" : "stop"} was interrupted`,
          "stop it and mark it stopped (it wakes on demand)",
          () => markStopped(instance.name),
        );
        continue;
      case "running":
        await checkLegacyLeftovers(ctx, instance.name, add);
        if (!alive && !orphaned.has(instance.name)) {
          await add(
            `${instance.name}: recorded running but its process is ${program?.state ?? "not loaded"}`,
            "mark it stopped",
            () => markStopped(instance.name),
          );
        }
        break;
      default:
        await checkLegacyLeftovers(ctx, instance.name, add);
        if (alive) {
          await add(
            `${instance.name}: recorded ${instance.state} but its process runs`,
            "stop the process",
            async () => {
              await stopProcesses(ctx, instance.name);
            },
          );
        }
    }
  }

  const cgroups = await instanceCgroups(ctx);
  if (cgroups) {
    for (const instance of instances) {
      const state = programs.get(instance.name)?.state;
      const programAlive = state === "RUNNING" || state === "STARTING" || state === "STOPPING";
      // A running instance's processes belong in its cgroup; a stopped one's do not.
      if (busy.has(instance.name) || programAlive) continue;
      if (
        instance.state !== "stopped" &&
        instance.state !== "suspended" &&
        instance.state !== "failed"
      )
        continue;
      const pids = await cgroups.pids(instance.name);
      if (pids.length === 0) continue;
      const names = await Promise.all(
        pids.slice(0, 5).map(async (pid) => `${pid} ${(await processName(pid)) ?? "?"}`),
      );
      await add(
        `${instance.name}: ${pids.length} process${pids.length === 1 ? "" : "es"} left in its cgroup although it is ${instance.state} (${names.join(", ")}${pids.length > 5 ? ", ..." : ""})`,
        "kill them",
        async () => {
          await cgroups.killAll(instance.name);
        },
      );
    }
    for (const name of await cgroups.names()) {
      if (!known.has(name)) {
        await add(`${name}: cgroup without an instance`, "kill what is in it and remove it", () =>
          cgroups.remove(name),
        );
      }
    }
  }

  // Running instances listening beyond loopback: acc cannot fix the app, only say so.
  const running = instances.filter(
    (i) => i.state === "running" && !busy.has(i.name) && programs.get(i.name)?.state === "RUNNING",
  );
  const exposed = await exposedListeners(ctx, running);
  for (const name of [...exposed.keys()].sort()) {
    findings.push({
      problem: `${name}: ${describeExposed(exposed.get(name) ?? [])}`,
      repair: `make its app listen on $HOST (127.0.0.1) only, then acc restart ${name}`,
      repaired: false,
    });
  }

  if (supervisorUp) await checkPorts(ctx, instances, busy, repair, findings);

  findings.push(...reservedNameFindings(instances, ctx.config.admin_host));

  for (const name of await namesIn(ctx.paths.programs, ".conf")) {
    if (!known.has(name)) {
      await add(`${name}: program file without an instance`, "remove the program", () =>
        ctx.processes.removeProgram(name),
      );
    }
  }
  for (const name of new Set([
    ...(await namesIn(ctx.paths.nginxSites, ".conf")),
    ...(await namesIn(ctx.paths.nginxHosts, ".map")),
  ])) {
    if (!known.has(name)) {
      await add(`${name}: nginx files without an instance`, "remove them", () =>
        ctx.proxy.removeSite(name),
      );
    }
  }
  for (const name of await namesIn(ctx.paths.instances, "")) {
    if (!known.has(name) && !name.includes(".")) {
      const target = path.join(ctx.paths.backups, name, `orphan-${now().replace(/[-:.]/g, "")}`);
      await add(
        `${name}: instance folder without an instance`,
        `move it to ${target}`,
        async () => {
          await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
          await rename(instancePaths(ctx.home, name).root, target);
        },
      );
    }
  }
  // Read once: a folder listing per instance would cost O(N^2) at 10,000 instances.
  const sites = new Set(await namesIn(ctx.paths.nginxSites, ".conf"));
  for (const instance of instances) {
    if (instance.state === "creating" || instance.state === "destroying") continue;
    if (!sites.has(instance.name)) {
      await add(`${instance.name}: its nginx files are missing`, "write them again", async () =>
        ctx.proxy.applySite(siteOf(ctx, instance, await instanceManifest(ctx, instance))),
      );
    }
  }
  // After the repairs above: the code of an instance whose create was undone is unused too.
  const code = await pruneCode(ctx, { dryRun: !repair });
  if (code.removed.length > 0) {
    findings.push({
      problem: `${code.removed.length} code folder(s) in ${ctx.paths.code} that no instance uses (${(code.freed_bytes / 1e6).toFixed(1)} MB): ${code.removed.map((f) => f.folder).join(", ")}`,
      repair: "remove them (acc models prune)",
      repaired: repair,
      advisory: true,
    });
  }
  if (!supervisorUp && orphans.length > 0) {
    findings.push({
      problem: `supervisord of this home is not running but ${orphans.length} of its processes are: ${describeHomeProcesses(orphans)}`,
      repair:
        "run acc boot: it stops them (nginx gracefully, instances as a stop does, Postgres with a fast shutdown), then starts everything again; the instances that ran wake on their next request",
      repaired: false,
    });
  } else if (!supervisorUp) {
    findings.push({
      problem: "acc's supervisord is not running",
      repair: "run acc boot",
      repaired: false,
    });
  } else {
    try {
      if (!(await ctx.proxy.isRunning()))
        findings.push({
          problem: "acc's nginx is not running",
          repair: "run acc boot",
          repaired: false,
        });
    } catch (error) {
      if (!isAccError(error)) throw error;
      findings.push({
        problem: `acc's nginx: ${error.message}`,
        repair: "run acc boot",
        repaired: false,
      });
    }
  }
  return findings;
}

/**
 * Instances made before admin_host existed (or before it was changed) may bear its first label
 * or its host: acc's own server block wins in nginx, so such an instance is not reachable by
 * that host. Only the sysadmin can choose the way out.
 */
export function reservedNameFindings(
  instances: readonly Pick<InstanceRecord, "name" | "hosts">[],
  adminHost: string,
): Finding[] {
  const reserved = reservedInstanceName(adminHost);
  const host = adminHost.toLowerCase();
  return instances
    .filter((i) => i.name === reserved || i.hosts.some((h) => h.toLowerCase() === host))
    .map((i) => ({
      problem: `${i.name}: ${i.name === reserved ? `its name is the first label of acc's admin host ${adminHost}` : `it has acc's admin host ${adminHost} as a host`}; acc's API and admin UI answer that host, not the instance`,
      repair: `move it to another name (acc backup ${i.name}, then acc restore NEWNAME BACKUP --as-new, then acc destroy ${i.name}) or set admin_host in acc.toml to another host, then acc boot`,
      repaired: false,
    }));
}

type AddFinding = (problem: string, fix: string, action: () => Promise<void>) => Promise<void>;

/**
 * Restores killed half-way (restores.ts): finished when they had reached their commit point
 * (the backup's data/ and database both staged), else undone; never left as a mix.
 */
async function checkRestores(
  ctx: AccContext,
  busy: ReadonlySet<string>,
  add: AddFinding,
): Promise<void> {
  for (const { name, journal } of await restoresInProgress(ctx)) {
    if (busy.has(name) || (journal !== undefined && restoreUnderWay(journal))) continue;
    const where = `${ctx.paths.restores}/${name}`;
    const from = journal ? ` from ${journal.backup}` : "";
    const exists = (await ctx.store.getInstance(name)) !== undefined;
    if (journal?.phase === "prepared" && exists) {
      await add(
        `${name}: a restore${from} was interrupted after its commit point (the backup's data/ and database were both ready)`,
        `finish it: put the backup's database and data/ in place together, remove ${where}`,
        () => settleLocked(ctx, name),
      );
    } else if (journal === undefined) {
      // The journal is written right after the folder is made, and removed just before the
      // folder at the end: without it, the restore was killed as it began (nothing staged yet)
      // or as it ended (everything in place). Either way the instance is whole as it is.
      await add(
        `${name}: a restore left its folder ${where} without a journal (killed as it began or as it ended): nothing of it is staged`,
        `remove the folder${exists ? `; ${name} keeps its data/ and database as they are` : ""}`,
        () => settleLocked(ctx, name),
      );
    } else if (journal.asNew === true && exists) {
      await add(
        `${name}: acc restore --as-new${from} was interrupted before its commit point`,
        `undo it: remove ${name}, which it was making, and the staged copy in ${where}`,
        async () => {
          await settleLocked(ctx, name);
          await removeEverywhere(ctx, name);
        },
      );
    } else {
      await add(
        `${name}: a restore${from} was interrupted before its commit point`,
        `undo it: ${exists ? `${name} keeps its own data/ and database; ` : ""}remove the staged copy in ${where} and its staged database`,
        () => settleLocked(ctx, name),
      );
    }
  }
}

/**
 * Upgrades killed before their commit point, or while rolling back (upgrade-journal.ts): rolled
 * back, so that each instance is wholly on its old version, never a mix.
 */
async function checkUpgrades(
  ctx: AccContext,
  busy: ReadonlySet<string>,
  add: AddFinding,
): Promise<void> {
  for (const { name, journal } of await interruptedUpgrades(ctx)) {
    if (busy.has(name) || upgradeUnderWay(journal)) continue;
    const what = `${journal.model} ${journal.from.version} to ${journal.to.version}`;
    await add(
      `${name}: its upgrade from ${what} was interrupted ${journal.phase === "rolling-back" ? "while it was rolled back" : "before its commit point"}`,
      `roll it back to ${journal.from.version}: its code, config and env${journal.ranCode ? `, and its data/ and database from the pre-upgrade backup ${journal.backup}` : " (no code of the new version ran: its data/ and database are as they were)"}; it is left stopped and wakes on its next request`,
      () =>
        withLease(ctx.store, name, "doctor", async () => void (await settleUpgrade(ctx, name)), {
          waitMs: 1000,
          what: `instance ${name}`,
        }),
    );
  }
}

/** Settles a restore under the instance's lease: no start or restore of it meanwhile. */
async function settleLocked(ctx: AccContext, name: string): Promise<void> {
  await withLease(ctx.store, name, "doctor", async () => void (await settleRestore(ctx, name)), {
    waitMs: 1000,
    what: `instance ${name}`,
  });
}

/**
 * Backups killed before they were complete (a backup's folder gets its name only once its
 * manifest is written): removed, since the instance they copy is unchanged (a destroy removes
 * nothing before its final backup is complete) and a half archive is no backup.
 */
async function checkPartialBackups(
  ctx: AccContext,
  busy: ReadonlySet<string>,
  add: AddFinding,
): Promise<void> {
  for (const name of await readDirIfExists(ctx.paths.backups)) {
    if (busy.has(name)) continue; // a backup (or destroy) under way
    const dir = path.join(ctx.paths.backups, name);
    const entries = await readDirIfExists(dir).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === "ENOTDIR") return [];
      throw error;
    });
    for (const entry of entries.filter((e) => e.endsWith(".partial"))) {
      const partial = path.join(dir, entry);
      const exists = (await ctx.store.getInstance(name)) !== undefined;
      await add(
        `${name}: an incomplete backup ${partial} (a backup or a destroy's final backup was killed)`,
        `remove it (${exists ? `${name} is unchanged: acc backup ${name} makes a new one` : "it is no backup"})`,
        () => rm(partial, { recursive: true, force: true }),
      );
    }
  }
}

/** Staging folders a restore of an older acc left inside the instance's folder. */
async function checkLegacyLeftovers(ctx: AccContext, name: string, add: AddFinding): Promise<void> {
  const leftovers = await legacyRestoreLeftovers(ctx, name).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  });
  if (leftovers.length === 0) return;
  await add(
    `${name}: an interrupted restore left ${leftovers.join(", ")} in its folder`,
    "remove them as its user",
    async () => {
      const owner = await dataOwner(ctx, name);
      for (const dir of leftovers) await removeAsOwner(ctx, dir, owner);
    },
  );
}

/**
 * Instances' ports: another program listening on one takes that instance's visitors; a port
 * of an instance that does not run is acc-ports' to hold; acc-ports holds no other.
 */
async function checkPorts(
  ctx: AccContext,
  instances: readonly InstanceRecord[],
  busy: ReadonlySet<string>,
  repair: boolean,
  findings: Finding[],
): Promise<void> {
  const settled = instances.filter(
    (i) => !busy.has(i.name) && i.state !== "creating" && i.state !== "destroying",
  );
  const intruders = await portIntruders(ctx, settled);
  for (const [name, who] of [...intruders].sort()) {
    findings.push({
      problem: `${name}: ${who}: its visitors would reach that program, not ${name}`,
      repair:
        "stop that program (acc never kills what it did not start); acc-ports then takes the port back",
      repaired: false,
    });
  }
  let kept: PortEntry[];
  try {
    kept = (await ctx.ports.status()).ports;
  } catch (error) {
    if (!isAccError(error, "ACC_NOT_BOOTED")) throw error;
    findings.push({
      problem: "acc-ports (which holds stopped instances' ports) is not running",
      repair: "run acc boot",
      repaired: false,
    });
    return;
  }
  const held = new Map(kept.map((entry) => [entry.port, entry]));
  let lingering: Set<number> | undefined;
  for (const instance of settled) {
    if (instance.state === "running" || instance.state === "starting") continue;
    if (intruders.has(instance.name)) continue;
    const mode = held.get(instance.port)?.mode;
    if (mode === "held" || mode === "lent") continue;
    // An app that bound its port itself leaves its closed connections in TIME_WAIT for up to a
    // minute, which keeps acc-ports' bind out; it retries every second. Only a short wait.
    lingering ??= new Set(
      (await readTcpSockets({ state: TCP_TIME_WAIT })).map((socket) => socket.port),
    );
    if (mode === "squatted" && lingering.has(instance.port)) {
      findings.push({
        problem: `${instance.name}: its port ${instance.port} is not held yet: its last connections linger (TIME_WAIT)`,
        repair: "none needed: acc-ports holds it again once they are gone, within a minute",
        repaired: false,
        advisory: true,
      });
      continue;
    }
    const finding = {
      problem: `${instance.name}: acc-ports does not hold its port ${instance.port}: another user could take it`,
      repair: "hold it",
      repaired: false,
    };
    if (repair) finding.repaired = await holdPort(ctx, instance.port);
    findings.push(finding);
  }
  const ports = new Set(instances.map((i) => i.port));
  for (const entry of kept) {
    if (ports.has(entry.port)) continue;
    findings.push({
      problem: `port ${entry.port}: acc-ports holds it for no instance`,
      repair: "let it go",
      repaired: repair,
    });
    if (repair) await ctx.ports.release(entry.port);
  }
}
