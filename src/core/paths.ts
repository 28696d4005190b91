/** Every path acc uses, derived from the home folder (design.md, "Home layout"). */
export interface HomePaths {
  home: string;
  config: string;
  store: string;
  models: string;
  /** Model code shared by all instances of one model version, readable by their users. */
  code: string;
  instances: string;
  backups: string;
  /** Restores under way: their journal and staged data/, beside instances/ (same filesystem). */
  restores: string;
  /** Instances' logs, one root-only folder each: nothing an instance can write (see instancePaths). */
  logs: string;
  run: string;
  supervisor: string;
  supervisorConf: string;
  /** Program files of all instances (written at create). */
  programs: string;
  /** Program files supervisord currently loads: only instances that are started. */
  programsActive: string;
  supervisorSocket: string;
  supervisorLog: string;
  supervisorPid: string;
  nginx: string;
  nginxConf: string;
  nginxSites: string;
  nginxHosts: string;
  nginxLogs: string;
  nginxTemp: string;
  nginxPid: string;
  nginxControlSocket: string;
  nginxGeneration: string;
  /** One HTTPS server block (and host list) per instance with a certificate. */
  nginxTls: string;
  /** What every HTTPS server block includes: the same locations as the HTTP server. */
  nginxHttpsLocations: string;
  /** Certificates and keys: root (or acc's user) only, 0700; never readable by an instance. */
  tls: string;
  /** tls/instances/NAME.crt and NAME.key: one instance's certificate. */
  tlsInstances: string;
  /** tls/wildcard.crt and wildcard.key: *.<domain>, for instances without one of their own. */
  tlsWildcardCert: string;
  tlsWildcardKey: string;
  /**
   * ACME (tls = "acme"), root (or acc's user) only, 0700, in no backup: account.key and
   * account.json (the home's account), state/NAME.json (an instance's certificate: where it
   * came from, its renewal attempts), challenges/TOKEN (what acc server answers to the CA),
   * orders.json (the recent orders, for the rate-limit guard).
   */
  acme: string;
  acmeAccountKey: string;
  acmeAccount: string;
  acmeState: string;
  acmeChallenges: string;
  acmeOrders: string;
  /** acme/warnings.json: the certificates that need a look, for acc list and acc status. */
  acmeWarnings: string;
  postgres: string;
  /** acc-ports, the keeper of instances' ports: its control socket and its state across restarts. */
  portsSocket: string;
  portsState: string;
  /** The folder of the waker's socket: root and nginx's workers only (group nginx_user). */
  waker: string;
  /** Where nginx hands acc server the requests of instances that are not running. */
  wakerSocket: string;
  /** acc server's API for this machine: root (or the user acc runs as) only, mode 0600. */
  apiSocket: string;
  /** Where nginx hands acc server the admin host's requests (API with a token, admin UI). */
  adminSocket: string;
}

export function homePaths(home: string): HomePaths {
  const p = (...parts: string[]): string => [home, ...parts].join("/");
  return {
    home,
    config: p("acc.toml"),
    store: p("state.db"),
    models: p("models"),
    code: p("code"),
    instances: p("instances"),
    backups: p("backups"),
    restores: p("restores"),
    logs: p("logs"),
    run: p("run"),
    supervisor: p("supervisor"),
    supervisorConf: p("supervisor", "supervisord.conf"),
    programs: p("supervisor", "programs"),
    programsActive: p("supervisor", "conf.d"),
    supervisorSocket: p("run", "supervisor.sock"),
    supervisorLog: p("supervisor", "supervisord.log"),
    supervisorPid: p("run", "supervisord.pid"),
    nginx: p("nginx"),
    nginxConf: p("nginx", "nginx.conf"),
    nginxSites: p("nginx", "sites"),
    nginxHosts: p("nginx", "hosts"),
    nginxLogs: p("nginx", "logs"),
    nginxTemp: p("nginx", "temp"),
    nginxPid: p("run", "nginx.pid"),
    nginxControlSocket: p("run", "nginx-control.sock"),
    nginxGeneration: p("nginx", "generation.conf"),
    nginxTls: p("nginx", "tls"),
    nginxHttpsLocations: p("nginx", "https-locations.conf"),
    tls: p("tls"),
    tlsInstances: p("tls", "instances"),
    tlsWildcardCert: p("tls", "wildcard.crt"),
    tlsWildcardKey: p("tls", "wildcard.key"),
    acme: p("acme"),
    acmeAccountKey: p("acme", "account.key"),
    acmeAccount: p("acme", "account.json"),
    acmeState: p("acme", "state"),
    acmeChallenges: p("acme", "challenges"),
    acmeOrders: p("acme", "orders.json"),
    acmeWarnings: p("acme", "warnings.json"),
    postgres: p("postgres"),
    portsSocket: p("run", "ports.sock"),
    portsState: p("run", "ports.state"),
    waker: p("waker"),
    wakerSocket: p("waker", "waker.sock"),
    apiSocket: p("run", "api.sock"),
    adminSocket: p("waker", "admin.sock"),
  };
}

/**
 * An instance's files. Its folder is root's and only readable by the instance's group: the
 * instance cannot create, replace or link anything in it, so nothing root writes or reads there
 * can be turned against root. Only `data/` is the instance's own. Its log is outside, in a
 * root-only folder, because supervisord (root) opens it.
 */
export interface InstancePaths {
  /** HOME/instances/NAME: root:acc-NAME 0750. */
  root: string;
  /** The app's own data (DATA_DIR): acc-NAME 0700; the one folder the instance can write. */
  data: string;
  /** Rendered config templates (CONFIG_DIR): root:acc-NAME 0750, files read-only to the app. */
  config: string;
  /** Environment file with the secrets: root:acc-NAME 0640. */
  env: string;
  /** What acc-launch needs to start the app: root 0600. */
  launch: string;
  /** The journal of its last upgrade (upgrades.ts): root 0600. */
  upgrade: string;
  /** HOME/logs/NAME: root 0700. */
  logs: string;
  appLog: string;
}

/** HOME/acme/state/NAME.json: where an instance's certificate came from, and its renewal. */
export function certificateStatePath(paths: Pick<HomePaths, "acmeState">, name: string): string {
  return `${paths.acmeState}/${name}.json`;
}

export function instancePaths(home: string, name: string): InstancePaths {
  const root = `${home}/instances/${name}`;
  const logs = `${home}/logs/${name}`;
  return {
    root,
    data: `${root}/data`,
    config: `${root}/config`,
    env: `${root}/env`,
    launch: `${root}/launch`,
    upgrade: `${root}/upgrade.json`,
    logs,
    appLog: `${logs}/app.log`,
  };
}
