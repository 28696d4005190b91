import { validateHostname, validatePort } from "../core/validate.js";
import { describeHomeProcesses } from "../services/home-processes.js";
import { stopInstance } from "../services/instances.js";
import {
  boot,
  initHome,
  reloadServices,
  shutdown,
  status,
  writeServiceConfigs,
} from "../services/system.js";
import { flag, stringOption, type Command } from "./command.js";

export const initCommand: Command = {
  name: "init",
  summary:
    "Create the home folder and acc.toml; install nginx and supervisord with apt when missing (as root). Safe to run again.",
  usage: "[--domain D] [--http-port P] [--no-install]",
  help: [
    "--domain D          instances answer at NAME.D (default localhost)",
    "--http-port P       public HTTP port (default 80 as root, 8080 otherwise)",
    "--no-install        never run apt-get; print the command instead",
  ],
  options: {
    domain: { type: "string" },
    "http-port": { type: "string" },
    "no-install": { type: "boolean" },
  },
  positionals: { min: 0, max: 0, names: "" },
  json: true,
  async run(args, cli) {
    const domain = stringOption(args, "domain");
    const port = stringOption(args, "http-port");
    const result = await initHome({
      home: cli.home,
      ...(domain !== undefined ? { domain: validateHostname(domain) } : {}),
      ...(port !== undefined ? { httpPort: validatePort(port, "HTTP port") } : {}),
      install: !flag(args, "no-install"),
      env: cli.env,
    });
    // The store and the nginx and supervisord configs exist from now on: creates work before boot.
    const ctx = await cli.open();
    await writeServiceConfigs(ctx);
    // On a booted home the changes (a port, the users of an older acc) apply now.
    if (await ctx.processes.isRunning()) await reloadServices(ctx);
    const lines = [
      `${result.created ? "created" : "kept"} ${result.config}`,
      ...(result.installed.length > 0 ? [`installed ${result.installed.join(", ")}`] : []),
      ...result.ports.map(
        (p) => `${p.key} = ${p.port}, since its default ${p.default} is taken: ${p.holder}`,
      ),
      "next: acc boot",
    ];
    return { data: result, text: lines.join("\n") };
  },
};

export const bootCommand: Command = {
  name: "boot",
  summary: "Start acc's supervisord and nginx (safe to run again; run it from systemd at boot).",
  usage: "",
  help: [],
  options: {},
  positionals: { min: 0, max: 0, names: "" },
  json: true,
  async run(_args, cli) {
    const ctx = await cli.open();
    const result = await boot(ctx);
    const lines = [];
    if (result.orphans.length > 0)
      lines.push(
        `acc's supervisord had stopped; stopped what it left running: ${describeHomeProcesses(result.orphans)}`,
      );
    lines.push(
      `supervisord ${result.supervisord}; nginx running on ${ctx.config.listen_address}:${ctx.config.http_port}`,
    );
    if (result.reset.length > 0)
      lines.push(
        `were running before, now stopped until their next request: ${result.reset.join(", ")}`,
      );
    const { migrated, refreshed, failed } = result.migration;
    if (migrated.length > 0)
      lines.push(`moved to the current folder layout: ${migrated.join(", ")}`);
    if (refreshed.length > 0)
      lines.push(
        `launch rewritten for the sandbox and cgroups as they are now: ${refreshed.join(", ")}`,
      );
    if (!result.cgroups.enabled)
      lines.push(
        `instances are not contained (no cgroup per instance): ${result.cgroups.reason ?? "unknown"}; their detached processes can outlive a stop and limits are not enforced`,
      );
    for (const { name, error } of failed) lines.push(`could not migrate ${name}: ${error}`);
    if (result.squatted.length > 0)
      lines.push(
        `ports of stopped instances held by another program (acc doctor names it): ${result.squatted.join(", ")}`,
      );
    return { data: result, text: lines.join("\n"), exitCode: failed.length > 0 ? 1 : 0 };
  },
};

export const shutdownCommand: Command = {
  name: "shutdown",
  summary: "Stop every running instance gracefully, then nginx and acc's supervisord.",
  usage: "",
  help: [],
  options: {},
  positionals: { min: 0, max: 0, names: "" },
  json: true,
  async run(_args, cli) {
    const ctx = await cli.open();
    const result = await shutdown(ctx, (name) => stopInstance(ctx, name, { cause: "shutdown" }));
    const text = result.wasRunning
      ? `stopped ${result.stopped.length} instance(s), nginx and supervisord`
      : "acc was not running";
    return { data: result, text };
  },
};

export const statusCommand: Command = {
  name: "status",
  summary: "Show what runs and where: processes, ports, home, versions, instance counts.",
  usage: "",
  help: [],
  options: {},
  positionals: { min: 0, max: 0, names: "" },
  json: true,
  async run(_args, cli) {
    const ctx = await cli.open();
    const report = await status(ctx);
    const counts = Object.entries(report.instances)
      .map(([state, n]) => `${n} ${state}`)
      .join(", ");
    const rows = [
      ["home", report.home],
      ["supervisord", report.supervisord],
      ["nginx", `${report.nginx} on ${report.listen_address}:${report.http_port}`],
      ["acc server", `${report.server} on 127.0.0.1:${report.server_port}`],
      [
        "acc-exits",
        report.exits === "running"
          ? "running (records an instance's crash as it happens)"
          : "stopped: crashes are found only by the next wake, start or acc doctor",
      ],
      [
        "postgres",
        `${report.postgres.state} (${report.postgres.mode}) on ${report.postgres.where}`,
      ],
      [
        "acc-ports",
        `${report.ports.state}, holding ${report.ports.held} instance ports${report.ports.squatted.length > 0 ? `; taken by another program: ${report.ports.squatted.join(", ")}` : ""}`,
      ],
      ...(report.orphans.length > 0
        ? [
            [
              "orphans",
              `supervisord is not running but ${report.orphans.length} of this home's processes are: ${describeHomeProcesses(report.orphans)}; acc boot stops them and starts everything again`,
            ],
          ]
        : []),
      [
        "sandbox",
        report.sandbox.enabled
          ? `bubblewrap (own mount, PID, IPC namespaces); ${report.sandbox.isolation}`
          : `off: ${report.sandbox.reason ?? "unknown"}; ${report.sandbox.isolation}`,
      ],
      [
        "cgroups",
        report.cgroups.enabled
          ? `one per instance (${report.cgroups.layout ?? "?"}: ${report.cgroups.where ?? "?"}); a stop kills all of its processes, limits are enforced`
          : `off: ${report.cgroups.reason ?? "unknown"}; NOT contained: an instance's detached processes can outlive its stop, and memory, cpu and pids limits are not enforced`,
      ],
      ["domain", `${report.domain} (instance NAME answers at NAME.${report.domain})`],
      ["instance ports", report.instance_ports],
      ["instances", report.total === 0 ? "none" : `${report.total}: ${counts}`],
      [
        "versions",
        `acc ${report.versions.acc}, node ${report.versions.node}, nginx ${report.versions.nginx}, supervisord ${report.versions.supervisord}`,
      ],
    ];
    const width = Math.max(...rows.map(([key]) => (key ?? "").length));
    const up = [
      report.supervisord,
      report.nginx,
      report.server,
      report.exits,
      report.ports.state,
    ].every((s) => s === "running");
    const exitCode = up ? 0 : 1;
    return {
      data: report,
      text: rows.map(([k, v]) => `${(k ?? "").padEnd(width)}  ${v}`).join("\n"),
      exitCode,
    };
  },
};
