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
  postgres: string;
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
    postgres: p("postgres"),
  };
}

export interface InstancePaths {
  root: string;
  data: string;
  config: string;
  logs: string;
  /** Environment file with the secrets, mode 0600. */
  env: string;
  /** The launcher supervisord runs: loads env, then execs the model's command. */
  run: string;
  appLog: string;
}

export function instancePaths(home: string, name: string): InstancePaths {
  const root = `${home}/instances/${name}`;
  return {
    root,
    data: `${root}/data`,
    config: `${root}/config`,
    logs: `${root}/logs`,
    env: `${root}/env`,
    run: `${root}/run.sh`,
    appLog: `${root}/logs/app.log`,
  };
}
