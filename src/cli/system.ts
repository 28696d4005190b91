import { validateHostname, validatePort } from "../core/validate.js";
import { describeHomeProcesses } from "../core/home-processes.js";
import { flag, stringOption, type Command } from "./command.js";

// Loaded on demand: the CLI client (acc list through the API) never loads services/.
const system = (): Promise<typeof import("../services/system.js")> =>
  import("../services/system.js");

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
    const result = await (
      await system()
    ).initHome({
      home: cli.home,
      ...(domain !== undefined ? { domain: validateHostname(domain) } : {}),
      ...(port !== undefined ? { httpPort: validatePort(port, "HTTP port") } : {}),
      install: !flag(args, "no-install"),
      env: cli.env,
    });
    // The store and the nginx and supervisord configs exist from now on: creates work before boot.
    const ctx = await cli.open();
    await (await system()).writeServiceConfigs(ctx);
    // On a booted home the changes (a port, the users of an older acc) apply now.
    if (await ctx.processes.isRunning()) await (await system()).reloadServices(ctx);
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
    const result = await (await system()).boot(ctx);
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
    const { stopInstance } = await import("../services/instances.js");
    const result = await (
      await system()
    ).shutdown(ctx, (name) => stopInstance(ctx, name, { cause: "shutdown" }));
    const text = result.wasRunning
      ? `stopped ${result.stopped.length} instance(s), nginx and supervisord`
      : "acc was not running";
    return { data: result, text };
  },
};
