// The nginx driver's I/O edge: writes the files render.ts produces, checks them with
// `nginx -t`, and makes the running nginx load them (design.md, "nginx at scale").
import { randomBytes } from "node:crypto";
import { chmod, lchown, lstat, readFile, rename, rm } from "node:fs/promises";
import type { HomePaths } from "../../core/paths.js";
import { isValidInstanceName } from "../../core/validate.js";
import { describeCertificate } from "../../lib/certificates.js";
import { hostCovered, wildcardName } from "../../core/tls-hosts.js";
import { AccError, hasErrno } from "../../lib/errors.js";
import { ExecError, type Exec } from "../../lib/exec.js";
import {
  chownTreeNoFollow,
  ensureDirMode,
  ensureOwnedDir,
  readDirIfExists,
  readFileIfExists,
  stageFile,
  writeFileAtomic,
} from "../../lib/files.js";
import {
  fetchGeneration,
  fileSize,
  listAcceptingWorkers,
  nginxComplaint,
  readMasterPid,
  ReloadRefused,
  waitSettled,
} from "./control.js";
import {
  TEMP_DIRS,
  certificateFiles,
  certificatePath,
  errorLogPath,
  hostMapPath,
  keyPath,
  renderGeneration,
  renderHttpsLocations,
  renderNginxConf,
  renderSite,
  renderTimeout,
  renderTlsHostMap,
  renderTlsSite,
  siteOfOldLayout,
  sitePath,
  timeoutPath,
  timeoutsDir,
  tlsHostMapPath,
  tlsSitePath,
  tlsWildcardSitePath,
} from "./render.js";

/** A lock shared by every acc process on the machine (the store provides it). */
export interface Mutex {
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

export interface NginxConfig {
  listenAddress: string;
  httpPort: number;
  /** acc.toml's admin_host. */
  adminHost: string;
  isRoot: boolean;
  /** Runs the workers when acc runs as root (nginx_user). */
  nginxUser: string;
  /** acc.toml's instance port range (the upstream has a server per port). */
  instancePorts: { min: number; max: number };
  /** acc.toml's request_timeout, in seconds. */
  requestTimeout: number;
  /** When acc.toml's tls is not off. */
  https?: { port: number; redirect: boolean; domain: string; acme?: boolean };
}

/** An instance's certificate (or the wildcard's, without a name) put in place or removed. */
export interface CertificateChange {
  /** Undefined: HOME/tls/wildcard.{crt,key}. */
  name?: string;
  /** PEM, already checked; undefined removes the certificate and its key. */
  files?: { cert: string; key: string };
  /** The instance's hosts the certificate covers (for an instance). */
  hosts: readonly string[];
}

/** One `nginx -t` or one settled reload, for logs, events and tests. */
export interface NginxEvent {
  action: "test" | "reload";
  ok: boolean;
  ms: number;
}

export interface NginxDeps {
  paths: HomePaths;
  exec: Exec;
  config: NginxConfig;
  mutex: Mutex;
  nginxBin?: string;
  /** Bounds each `nginx -t` and each wait for a reload to settle. */
  timeoutMs?: number;
  log?: (event: NginxEvent) => void;
}

export interface SiteChange {
  name: string;
  port: number;
  /** Lower-case host names, already validated (validateHostname). */
  hosts: readonly string[];
  /** How long nginx waits for its answer, in seconds, when not the config's request_timeout. */
  requestTimeout?: number;
}

export interface Nginx {
  /** Writes nginx.conf and creates the folders it names; run before nginx starts. */
  writeMainConfig(): Promise<void>;
  /** The argv supervisord runs: nginx in the foreground. */
  command(): string[];
  /** Checks the configuration on disk; throws ACC_NGINX with nginx's own complaint. */
  test(): Promise<void>;
  /** Writes one instance's files and makes nginx load them, or rolls them back. */
  applySite(site: SiteChange): Promise<void>;
  /** Puts a certificate and its HTTPS server in place (or removes them), or rolls them back. */
  applyCertificate(change: CertificateChange): Promise<void>;
  removeSite(name: string): Promise<void>;
  /** Tests, then, when nginx runs, reloads and waits until the new workers answer. */
  reload(): Promise<void>;
  isRunning(): Promise<boolean>;
  /** Waits until a started nginx answers on its control socket; throws with its error log. */
  waitRunning(timeoutMs: number): Promise<void>;
  /** Names of the instances that have files, for doctor. */
  listSites(): Promise<string[]>;
}

interface WorkerAccount {
  uid: number;
  gid: number;
  group: string;
}

interface FileChange {
  path: string;
  /** Undefined removes the file. */
  content: string | undefined;
  /** For certificates and keys (certificateAccess); else writeFileAtomic's default. */
  mode?: number;
  owner?: { uid: number; gid: number };
}

/** nginx's complaint when it rejected the configuration; other failures are thrown. */
interface Rejection {
  complaint: string;
  stderr: string;
}

const BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id";
// sun_path holds 108 bytes, the terminating NUL included.
const MAX_SOCKET_PATH = 107;

export function createNginx(deps: NginxDeps): Nginx {
  const { paths, exec, config, mutex } = deps;
  const bin = deps.nginxBin ?? "/usr/sbin/nginx";
  const timeoutMs = deps.timeoutMs ?? 30_000;
  const markerFile = `${paths.run}/nginx-applied`;
  const baseArgs = ["-p", `${paths.nginx}/`, "-c", paths.nginxConf, "-e", errorLogPath(paths)];
  let account: Promise<WorkerAccount> | undefined;

  function workerAccount(): Promise<WorkerAccount> {
    account ??= lookUpAccount(exec, config.nginxUser);
    return account;
  }

  async function writeMainConfig(): Promise<void> {
    if (Buffer.byteLength(paths.nginxControlSocket) > MAX_SOCKET_PATH) {
      throw new AccError("ACC_INVALID", `home folder path ${paths.home} is too long for nginx`, {
        hint: `${paths.nginxControlSocket} must fit in ${MAX_SOCKET_PATH} bytes (a unix socket path)`,
      });
    }
    const owner = config.isRoot ? await workerAccount() : undefined;
    // The workers pass through HOME/nginx and temp/ to their own folders, and see nothing else:
    // the logs hold every instance's requests, sites/ and hosts/ are read by the master (root).
    await ensureDirMode(paths.nginx, 0o711);
    for (const dir of [paths.nginxSites, paths.nginxHosts, paths.nginxLogs, paths.run]) {
      await ensureDirMode(dir, 0o700);
    }
    // The map entries naming the certificate files: read by the master (root) only.
    await ensureDirMode(paths.nginxTls, 0o700);
    await restrictCertificates(owner);
    await migrateInlineCertificates();
    for (const file of await readDirIfExists(paths.nginxLogs)) {
      const full = `${paths.nginxLogs}/${file}`;
      if ((await lstat(full)).isFile()) await chmod(full, 0o600);
    }
    // The waker's socket lives here: root's, open to nginx's workers (their group) only.
    await ensureOwnedDir(paths.waker, 0o750, owner ? { uid: 0, gid: owner.gid } : undefined);
    await ensureDirMode(paths.nginxTemp, 0o711);
    for (const dir of TEMP_DIRS) {
      const full = `${paths.nginxTemp}/${dir}`;
      await ensureDirMode(full, 0o700);
      if (!owner) continue;
      // Workers write request bodies and buffered answers here, as nginx_user. A folder of
      // another user (an older acc's one service user) is re-owned with what it holds.
      const info = await lstat(full);
      if (info.uid !== owner.uid || info.gid !== owner.gid) await chownTreeNoFollow(full, owner);
    }
    if ((await readFileIfExists(paths.nginxGeneration)) === undefined) {
      await writeFileAtomic(paths.nginxGeneration, renderGeneration(newGeneration()));
    }
    await ensureDirMode(timeoutsDir(paths), 0o700);
    await migrateHostMaps();
    await writeFileAtomic(paths.nginxHttpsLocations, await renderLocations());
    await writeFileAtomic(paths.nginxConf, await renderMainConfig());
    // nginx does not remove a unix socket left by a master that was killed, and then cannot
    // bind it: it would never start again.
    if ((await readMasterPid(paths.nginxPid, paths.nginxConf)) === undefined) {
      await rm(paths.nginxControlSocket, { force: true });
    }
  }

  /**
   * Certificates and keys: the workers load them at each handshake (render.ts, httpsServers), so
   * as root they are root's, readable by nginx's workers' group and nobody else (instances
   * included): folders 0750, files 0640. As a normal user the workers are that user: 0700, 0600.
   * Only acc's certificate files are opened to the workers, not whatever else HOME/tls holds.
   */
  async function restrictCertificates(owner: WorkerAccount | undefined): Promise<void> {
    const access = await certificateAccess();
    for (const dir of [paths.tls, paths.tlsInstances]) {
      await ensureOwnedDir(dir, owner ? 0o750 : 0o700, access.owner);
    }
    const files = [
      paths.tlsWildcardCert,
      paths.tlsWildcardKey,
      ...(await readDirIfExists(paths.tlsInstances))
        .filter((file) => /^[^.].*\.(crt|key)$/.test(file))
        .filter((file) => isValidInstanceName(file.slice(0, -4)))
        .map((file) => `${paths.tlsInstances}/${file}`),
    ];
    for (const file of files) {
      let info;
      try {
        info = await lstat(file);
      } catch (error) {
        if (hasErrno(error, "ENOENT")) continue;
        throw error;
      }
      if (!info.isFile()) continue;
      const { uid, gid } = access.owner ?? info;
      if (info.uid !== uid || info.gid !== gid) await lchown(file, uid, gid);
      if ((info.mode & 0o7777) !== access.mode) await chmod(file, access.mode);
    }
  }

  /** The mode and (as root) owner of certificate and key files. */
  async function certificateAccess(): Promise<{
    mode: number;
    owner?: { uid: number; gid: number };
  }> {
    if (!config.isRoot) return { mode: 0o600 };
    return { mode: 0o640, owner: { uid: 0, gid: (await workerAccount()).gid } };
  }

  /**
   * A home of the layout before held each certificate and key inline in HOME/nginx/tls/NAME.pem
   * (`host "PEM";`): its hosts now name the certificate files, and those copies of the keys go.
   */
  async function migrateInlineCertificates(): Promise<void> {
    for (const file of await readDirIfExists(paths.nginxTls)) {
      if (!file.endsWith(".pem")) continue;
      const full = `${paths.nginxTls}/${file}`;
      const name = file.slice(0, -4);
      const hosts = [...(await readFile(full, "utf8")).matchAll(/^(\S+) "-----BEGIN /gm)].map(
        (match) => match[1]!,
      );
      const wildcard = name === "_wildcard";
      if (hosts.length > 0 && (wildcard || isValidInstanceName(name))) {
        const files = certificateFiles(paths, wildcard ? undefined : name);
        if ((await readFileIfExists(`${files}.crt`)) !== undefined) {
          await writeFileAtomic(
            wildcard ? tlsWildcardSitePath(paths) : tlsSitePath(paths, name),
            renderTlsSite({ hosts, files }),
          );
        }
      }
      await rm(full, { force: true });
    }
  }

  /**
   * A home of a layout before held each instance's hosts in hosts/NAME.map (`map $host
   * $acc_instance`) and its key alone in sites/NAME.conf: each becomes one sites/NAME.conf (its
   * hosts with a key of this layout, for the port its old key hashed to), before nginx.conf
   * names only sites/. The new file is in place before the old one goes, so a boot cut short
   * finishes the rest.
   */
  async function migrateHostMaps(): Promise<void> {
    const conf = await readFileIfExists(paths.nginxConf);
    if (conf === undefined || !conf.includes("map $host $acc_instance {")) return;
    for (const file of await readDirIfExists(paths.nginxHosts)) {
      const name = file.slice(0, -".map".length);
      if (!file.endsWith(".map") || !isValidInstanceName(name)) continue;
      const hostsFile = hostMapPath(paths, name);
      const site = siteOfOldLayout(
        (await readFileIfExists(sitePath(paths, name))) ?? "",
        config.instancePorts,
      );
      if (site?.name === name) {
        const text = (await readFileIfExists(hostsFile)) ?? "";
        const hosts = [...text.matchAll(/^(\S+) ([a-z0-9-]+);$/gm)]
          .filter((match) => match[2] === name)
          .map((match) => match[1]!);
        await writeFileAtomic(
          sitePath(paths, name),
          renderSite({ ...site, hosts, ports: config.instancePorts }),
        );
      }
      await rm(hostsFile, { force: true });
    }
  }

  /** nginx.conf, with a location for each request timeout instances have (timeouts/). */
  async function renderMainConfig(
    change?: { name: string; seconds?: number },
    wildcard?: boolean,
  ): Promise<string> {
    return renderNginxConf(await mainOptions(change, wildcard));
  }

  async function renderLocations(change?: { name: string; seconds?: number }): Promise<string> {
    return renderHttpsLocations(await mainOptions(change));
  }

  async function mainOptions(
    change?: { name: string; seconds?: number },
    /** Whether HOME/tls/wildcard.crt is served; by default, whether it exists. */
    wildcard?: boolean,
  ): Promise<Parameters<typeof renderNginxConf>[0]> {
    const timeouts = new Map<string, number>();
    for (const file of await readDirIfExists(timeoutsDir(paths))) {
      const match = /^(\S+) (\d+);$/.exec(
        ((await readFileIfExists(`${timeoutsDir(paths)}/${file}`)) ?? "").trim(),
      );
      if (match && isValidInstanceName(match[1] ?? "")) timeouts.set(match[1]!, Number(match[2]));
    }
    if (change) {
      if (change.seconds === undefined) timeouts.delete(change.name);
      else timeouts.set(change.name, change.seconds);
    }
    const owner = config.isRoot ? await workerAccount() : undefined;
    const https = config.https;
    const hasWildcard =
      https !== undefined &&
      (wildcard ?? (await readFileIfExists(paths.tlsWildcardCert)) !== undefined);
    return {
      paths,
      listenAddress: config.listenAddress,
      httpPort: config.httpPort,
      adminHost: config.adminHost,
      isRoot: config.isRoot,
      workerUser: config.nginxUser,
      workerGroup: owner?.group,
      instancePorts: config.instancePorts,
      requestTimeout: config.requestTimeout,
      otherRequestTimeouts: [...timeouts.values()],
      ...(https
        ? {
            https: {
              port: https.port,
              redirect: https.redirect,
              ...(https.acme === true ? { acme: true } : {}),
              ...(hasWildcard ? { wildcardDomain: https.domain } : {}),
            },
          }
        : {}),
    };
  }

  function command(): string[] {
    return [bin, ...baseArgs, "-g", "daemon off;"];
  }

  /** Runs `nginx -t`; a rejection is returned, anything else (no binary, timeout) thrown. */
  async function runTest(): Promise<Rejection | undefined> {
    const started = Date.now();
    try {
      await exec(bin, [...baseArgs, "-t", "-q"], { timeoutMs });
      deps.log?.({ action: "test", ok: true, ms: Date.now() - started });
      return undefined;
    } catch (error) {
      deps.log?.({ action: "test", ok: false, ms: Date.now() - started });
      if (!(error instanceof ExecError)) throw error;
      if (error.exitCode === null && error.signal === null) {
        throw new AccError("ACC_ENV", `cannot run ${bin}: ${error.stderr}`, {
          hint: "install nginx: apt-get install nginx-light",
          cause: error,
        });
      }
      if (error.exitCode === null) {
        throw new AccError("ACC_NGINX", `nginx -t did not finish within ${timeoutMs} ms`, {
          cause: error,
        });
      }
      return { complaint: nginxComplaint(error.stderr), stderr: error.stderr };
    }
  }

  async function test(): Promise<void> {
    const rejection = await runTest();
    if (rejection) throw rejected(rejection);
  }

  /** Sends SIGHUP and waits until it settled; false when no nginx runs (boot starts it). */
  async function loadIfRunning(generation: string): Promise<boolean> {
    const pid = await readMasterPid(paths.nginxPid, paths.nginxConf);
    if (pid === undefined) return false;
    const started = Date.now();
    const oldWorkers = await listAcceptingWorkers(pid);
    const errorLog = { path: errorLogPath(paths), offset: await fileSize(errorLogPath(paths)) };
    try {
      // By pid, never by name: other nginx instances on this machine are not ours.
      process.kill(pid, "SIGHUP");
    } catch (error) {
      if (hasErrno(error, "ESRCH")) return false;
      throw error;
    }
    try {
      await waitSettled({
        socketPath: paths.nginxControlSocket,
        masterPid: pid,
        generation,
        oldWorkers,
        timeoutMs,
        errorLog,
      });
    } catch (error) {
      deps.log?.({ action: "reload", ok: false, ms: Date.now() - started });
      throw error;
    }
    deps.log?.({ action: "reload", ok: true, ms: Date.now() - started });
    return true;
  }

  /**
   * Makes nginx take the files: a running one reloads, and its master parses and checks them
   * itself, keeping its old configuration and workers when it refuses them, so no `nginx -t`
   * parses everything a second time first (at 10,000 instances a parse costs ~0.2 s of CPU).
   * With none running, `nginx -t` checks them for the next start. nginx's refusal is returned.
   */
  async function load(
    generation: string,
    change?: { rollback: () => Promise<void> },
  ): Promise<Rejection | undefined> {
    try {
      if (await loadIfRunning(generation)) return undefined;
    } catch (error) {
      if (error instanceof ReloadRefused) return { complaint: error.complaint, stderr: error.line };
      // Not settled in time, or the master exited: the files it accepted stay.
      throw error;
    }
    try {
      return await runTest();
    } catch (error) {
      // Untested files must not stay for the next reload to pick up.
      await change?.rollback();
      throw error;
    }
  }

  /**
   * Group commit: many callers that wrote their files share one reload (or test). The marker
   * holds the monotonic time at which the last successful one started: files written before it
   * were in it, so their writer has nothing to do.
   */
  async function commit(
    writtenAt: bigint | undefined,
    change?: { name: string; rollback: () => Promise<void> },
  ): Promise<void> {
    await mutex.run("nginx", async () => {
      const bootId = await readBootId();
      if (writtenAt !== undefined) {
        const marker = await readMarker(markerFile);
        if (marker && marker.bootId === bootId && marker.at > writtenAt) return;
      }
      const startedAt = process.hrtime.bigint();
      const rejection = await load(await nextGeneration(), change);
      if (rejection === undefined) {
        await writeMarker(markerFile, bootId, startedAt);
        return;
      }
      if (!change) throw rejected(rejection);
      await change.rollback();
      const retriedAt = process.hrtime.bigint();
      const still = await load(await nextGeneration());
      if (still) {
        throw new AccError(
          "ACC_NGINX",
          `nginx configuration is broken by something other than instance ${change.name}: ${still.complaint}`,
          {
            hint: `the change to ${change.name} was not applied; 'acc doctor' finds the broken file`,
            details: still.stderr.trim(),
          },
        );
      }
      // Others' changes written meanwhile were loaded without ours: now report ours.
      await writeMarker(markerFile, bootId, retriedAt);
      throw rejected(rejection, change.name);
    });
  }

  /** A new generation, written where the control server's /generation includes it. */
  async function nextGeneration(): Promise<string> {
    const generation = newGeneration();
    await writeFileAtomic(paths.nginxGeneration, renderGeneration(generation));
    return generation;
  }

  /** Writes (or removes) one instance's files in order, then commits; on failure restores them. */
  async function changeFiles(name: string, changes: FileChange[]): Promise<void> {
    const previous = await Promise.all(changes.map((change) => readFileIfExists(change.path)));
    const rollback = async (): Promise<void> => {
      // Reverse order, so that a host never points at an upstream that is gone.
      await putFiles(changes.map((change, i) => ({ ...change, content: previous[i] })).reverse());
    };
    try {
      await putFiles(changes);
    } catch (error) {
      await rollback();
      throw error;
    }
    await commit(process.hrtime.bigint(), { name, rollback });
  }

  async function applySite(site: SiteChange): Promise<void> {
    const seconds = site.requestTimeout === config.requestTimeout ? undefined : site.requestTimeout;
    // Rendered before anything is touched: a bad value changes nothing.
    const changes = [
      // Its timeout's location first, then its hosts and key: a host must never map to an
      // instance nginx cannot route.
      ...(await timeoutChanges(site.name, seconds)),
      {
        path: sitePath(paths, site.name),
        content: renderSite({ ...site, ports: config.instancePorts }),
      },
      ...(await tlsSiteChanges(site.name, site.hosts)),
    ];
    await changeFiles(site.name, changes);
  }

  /** Its map entries (certificate and key) for the hosts its certificate covers. */
  async function tlsSiteChanges(
    name: string,
    hosts: readonly string[],
    files?: { cert: string; key: string },
  ): Promise<FileChange[]> {
    // tls off: nothing to serve, so no certificate to read at each applySite.
    const cert =
      config.https === undefined
        ? undefined
        : (files?.cert ?? (await readFileIfExists(certificatePath(paths, name))));
    const key =
      cert === undefined
        ? undefined
        : (files?.key ?? (await readFileIfExists(keyPath(paths, name))));
    const names = !cert ? [] : describeCertificate(cert, certificatePath(paths, name)).names;
    const covered = hosts.filter((host) => hostCovered(names, host));
    const serve = covered.length > 0 && !!key;
    return [
      {
        path: tlsSitePath(paths, name),
        content: serve
          ? renderTlsSite({ hosts: covered, files: certificateFiles(paths, name) })
          : undefined,
      },
      { path: tlsHostMapPath(paths, name), content: serve ? renderTlsHostMap(covered) : undefined },
    ];
  }

  async function applyCertificate(change: CertificateChange): Promise<void> {
    const { name, files } = change;
    const certFile = name === undefined ? paths.tlsWildcardCert : certificatePath(paths, name);
    const keyFile = name === undefined ? paths.tlsWildcardKey : keyPath(paths, name);
    const access = await certificateAccess();
    // Put in place together (putFiles): a handshake that loads the pair between the two renames
    // gets a certificate with the other key and fails; that window is a few microseconds.
    const pemFiles: FileChange[] = [
      { path: certFile, content: files?.cert, ...access },
      { path: keyFile, content: files?.key, ...access },
    ];
    let served: FileChange[];
    if (name === undefined) {
      const entry =
        files === undefined || config.https === undefined
          ? undefined
          : renderTlsSite({
              hosts: [wildcardName(config.https.domain)],
              files: certificateFiles(paths),
            });
      served = [
        { path: tlsWildcardSitePath(paths), content: entry },
        // Its hosts' redirect.
        { path: paths.nginxConf, content: await renderMainConfig(undefined, files !== undefined) },
      ];
    } else {
      served = await tlsSiteChanges(name, files === undefined ? [] : change.hosts, files);
    }
    if (files) {
      // The stored files first, then the map entries naming them.
      await changeFiles(name ?? "wildcard", [...pemFiles, ...served]);
    } else {
      // Workers load the files at each handshake: they go once nginx no longer names them.
      await changeFiles(name ?? "wildcard", served);
      await putFiles(pemFiles);
    }
  }

  /** The instance's timeout file, and nginx.conf when the set of timeouts changes with it. */
  async function timeoutChanges(name: string, seconds: number | undefined): Promise<FileChange[]> {
    const changes: FileChange[] = [
      {
        path: timeoutPath(paths, name),
        content: seconds === undefined ? undefined : renderTimeout(name, seconds),
      },
    ];
    const timeout = { name, ...(seconds === undefined ? {} : { seconds }) };
    const main = await renderMainConfig(timeout);
    if (main !== (await readFileIfExists(paths.nginxConf))) {
      // A timeout no instance had yet gets its location before any instance maps to it.
      changes.unshift({ path: paths.nginxConf, content: main });
    }
    const locations = await renderLocations(timeout);
    if (locations !== (await readFileIfExists(paths.nginxHttpsLocations))) {
      changes.unshift({ path: paths.nginxHttpsLocations, content: locations });
    }
    return changes;
  }

  async function removeSite(name: string): Promise<void> {
    await changeFiles(name, [
      // Its HTTPS server first, then its routing.
      { path: tlsSitePath(paths, name), content: undefined },
      // The layout before held its key inline here, in a home not booted since.
      { path: tlsSitePath(paths, name).replace(/\.conf$/, ".pem"), content: undefined },
      { path: tlsHostMapPath(paths, name), content: undefined },
      // A file of the layout before (migrateHostMaps), for a home not booted since.
      { path: hostMapPath(paths, name), content: undefined },
      { path: sitePath(paths, name), content: undefined },
      { path: timeoutPath(paths, name), content: undefined },
    ]);
    // Once nginx no longer names them (workers load them at each handshake): destroy keeps no key.
    await putFiles([
      { path: certificatePath(paths, name), content: undefined },
      { path: keyPath(paths, name), content: undefined },
    ]);
  }

  async function reload(): Promise<void> {
    await commit(undefined);
  }

  async function isRunning(): Promise<boolean> {
    return (await readMasterPid(paths.nginxPid, paths.nginxConf)) !== undefined;
  }

  async function waitRunning(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if ((await readMasterPid(paths.nginxPid, paths.nginxConf)) !== undefined) {
        try {
          await fetchGeneration(
            paths.nginxControlSocket,
            Math.max(1, Math.min(1_000, deadline - Date.now())),
          );
          return;
        } catch (error) {
          // Not listening yet, or bind failed and the master is giving up: retried until the deadline.
          lastError = error;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const log = (await readFileIfExists(errorLogPath(paths))) ?? "";
    throw new AccError("ACC_NGINX", `nginx did not start within ${waitMs} ms`, {
      hint: `see ${errorLogPath(paths)}`,
      details: log.trimEnd().split("\n").slice(-10).join("\n"),
      cause: lastError,
    });
  }

  async function listSites(): Promise<string[]> {
    const names = new Set<string>();
    for (const [dir, suffix] of [
      [paths.nginxSites, ".conf"],
      [paths.nginxHosts, ".map"],
    ] as const) {
      for (const entry of await readDirIfExists(dir)) {
        if (!entry.endsWith(suffix) || entry.startsWith(".")) continue;
        const name = entry.slice(0, -suffix.length);
        if (isValidInstanceName(name)) names.add(name);
      }
    }
    return [...names].sort();
  }

  return {
    writeMainConfig,
    command,
    test,
    applySite,
    applyCertificate,
    removeSite,
    reload,
    isRunning,
    waitRunning,
    listSites,
  };
}

function rejected(rejection: Rejection, name?: string): AccError {
  return new AccError("ACC_NGINX", `nginx rejected the configuration: ${rejection.complaint}`, {
    hint: name === undefined ? undefined : `the change to ${name} was rolled back`,
    details: rejection.stderr.trim(),
  });
}

function newGeneration(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

/**
 * Puts each file in place (or removes it), in order. Every content is written and synced first,
 * so the renames follow each other closely: nginx's workers, which load certificate files at
 * each handshake, see the old pair or the new one but for microseconds.
 */
async function putFiles(changes: readonly FileChange[]): Promise<void> {
  const staged: (string | undefined)[] = [];
  try {
    for (const change of changes) {
      staged.push(
        change.content === undefined
          ? undefined
          : await stageFile(change.path, change.content, {
              ...(change.mode === undefined ? {} : { mode: change.mode }),
              ...change.owner,
            }),
      );
    }
    for (const [i, change] of changes.entries()) {
      const temp = staged[i];
      if (temp === undefined) {
        await rm(change.path, { force: true });
      } else {
        await rename(temp, change.path);
        staged[i] = undefined;
      }
    }
  } finally {
    for (const temp of staged) if (temp !== undefined) await rm(temp, { force: true });
  }
}

async function readBootId(): Promise<string> {
  return (await readFileIfExists(BOOT_ID_FILE))?.trim() ?? "";
}

/** The monotonic clock restarts at boot, so the boot id tells a stale marker from a live one. */
async function readMarker(file: string): Promise<{ bootId: string; at: bigint } | undefined> {
  const text = await readFileIfExists(file);
  const match = text === undefined ? null : /^(\S*) (\d+)\n?$/.exec(text);
  if (!match) return undefined;
  return { bootId: match[1]!, at: BigInt(match[2]!) };
}

async function writeMarker(file: string, bootId: string, at: bigint): Promise<void> {
  await writeFileAtomic(file, `${bootId} ${at}\n`);
}

async function lookUpAccount(exec: Exec, user: string): Promise<WorkerAccount> {
  let stdout: string;
  try {
    ({ stdout } = await exec("id", ["--", user], { timeoutMs: 5_000 }));
  } catch (error) {
    throw new AccError("ACC_ENV", `nginx_user ${JSON.stringify(user)} does not exist`, {
      hint: "acc init or acc boot creates it; or set nginx_user in acc.toml",
      cause: error,
    });
  }
  const match = /uid=(\d+)\([^)]*\) gid=(\d+)\(([^)]+)\)/.exec(stdout);
  if (!match) throw new Error(`bug: cannot read the output of id ${user}: ${stdout}`);
  return { uid: Number(match[1]), gid: Number(match[2]), group: match[3]! };
}
