import { flag } from "../cli/command.js";
import { idleMessage } from "../core/duration.js";
import { describeHomeProcesses } from "../core/home-processes.js";
import type { Finding } from "../services/doctor.js";
import type { MonitorReport } from "../services/monitor.js";
import type { StatusReport } from "../services/system.js";
import { formatBytes } from "./models.js";
import type { Operation } from "./types.js";

const NO_ARGS = { options: {}, positionals: { min: 0, max: 0, names: "" } } as const;

export function renderMonitorReport(report: MonitorReport, dryRun: boolean): string {
  const lines = [
    ...report.stopped.map((s) => `stopped ${s.name}: ${idleMessage(s)}`),
    ...report.would_stop.map((s) => `would stop ${s.name}: ${idleMessage(s)}`),
    ...report.skipped.map((s) => `skipped ${s.name}: ${s.reason}`),
    ...report.errors.map((e) => `failed ${e.name}: ${e.message}`),
  ];
  if (report.stopped.length === 0 && report.would_stop.length === 0) {
    lines.unshift(`nothing ${dryRun ? "would stop" : "to stop"} (${report.checked} running)`);
  }
  return lines.join("\n");
}

export const monitorOperation: Operation<{ dry_run?: boolean }, MonitorReport> = {
  id: "system.monitor",
  summary:
    "Stop the instances idle for longer than their idle timeout (one pass, for cron; acc server runs it on its own).",
  method: "POST",
  path: "/monitor",
  input: {
    type: "object",
    properties: {
      dry_run: { type: "boolean", description: "say what would be stopped, stop nothing" },
    },
    additionalProperties: false,
  },
  output: {
    type: "object",
    required: ["checked", "stopped", "would_stop", "skipped", "errors", "duration_ms"],
    properties: {
      checked: { type: "integer" },
      stopped: { type: "array" },
      would_stop: { type: "array" },
      skipped: { type: "array" },
      errors: { type: "array" },
      duration_ms: { type: "number" },
    },
  },
  errors: [],
  permission: "change",
  long: true,
  async run(call, input) {
    const { monitorPass } = await import("../services/monitor.js");
    return monitorPass(call.ctx, { dryRun: input.dry_run === true });
  },
  cli: {
    name: "monitor",
    usage: "[--dry-run] [--json]",
    help: ["--dry-run           say what would be stopped, stop nothing"],
    options: { "dry-run": { type: "boolean" } },
    positionals: NO_ARGS.positionals,
    json: true,
    input: (args) => (flag(args, "dry-run") ? { dry_run: true } : {}),
    render: (report, input) => ({
      text: renderMonitorReport(report, input.dry_run === true),
      exitCode: report.errors.length > 0 ? 1 : 0,
    }),
  },
};

export const doctorOperation: Operation<{ repair?: boolean }, Finding[]> = {
  id: "system.doctor",
  summary:
    "Compare the store with supervisord, nginx and the files after a crash, and say what is half-made; --repair finishes or undoes it.",
  method: "POST",
  path: "/doctor",
  input: {
    type: "object",
    properties: {
      repair: {
        type: "boolean",
        description: "bring them back in line (instance data is moved to backups/, never deleted)",
      },
    },
    additionalProperties: false,
  },
  output: {
    type: "array",
    items: {
      type: "object",
      required: ["problem", "repair", "repaired"],
      properties: {
        problem: { type: "string" },
        repair: { type: "string" },
        repaired: { type: "boolean" },
        advisory: { type: "boolean" },
      },
    },
  },
  errors: [],
  permission: (input) => (input.repair === true ? "change" : "read"),
  long: true,
  async run(call, input) {
    const { doctor } = await import("../services/doctor.js");
    return doctor(call.ctx, input.repair === true);
  },
  cli: {
    name: "doctor",
    usage: "[--repair]",
    help: [
      "--repair            bring them back in line (instance data is moved to backups/, never deleted)",
    ],
    options: { repair: { type: "boolean" } },
    positionals: NO_ARGS.positionals,
    json: true,
    // It must work when acc server is down, and it looks at acc server itself.
    mode: "direct",
    input: (args) => (flag(args, "repair") ? { repair: true } : {}),
    render(findings) {
      const open = findings.filter((f) => !f.repaired && f.advisory !== true);
      const text =
        findings.length === 0
          ? "all is well: the store, supervisord, nginx and the files agree"
          : findings
              .map(
                (f) =>
                  `${f.repaired ? "repaired" : f.advisory === true ? "note" : "found"}: ${f.problem} -> ${f.repair}`,
              )
              .join("\n");
      return { text, exitCode: open.length > 0 ? 1 : 0 };
    },
  },
};

function statusRows(report: StatusReport): string[][] {
  const counts = Object.entries(report.instances)
    .map(([state, n]) => `${n} ${state}`)
    .join(", ");
  return [
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
    ["postgres", `${report.postgres.state} (${report.postgres.mode}) on ${report.postgres.where}`],
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
    [
      "tls",
      report.tls.mode === "off"
        ? "off (HTTP only)"
        : `${report.tls.mode}, HTTPS on port ${report.tls.https_port}`,
    ],
    ...Object.entries(report.tls.warnings).map(([name, warning]): [string, string] => [
      "warning",
      `${name}: ${warning}`,
    ]),
    ["instance ports", report.instance_ports],
    ["instances", report.total === 0 ? "none" : `${report.total}: ${counts}`],
    [
      "disk",
      `${formatBytes(report.disk.free_bytes)} free of ${formatBytes(report.disk.total_bytes)} (the home's filesystem)`,
    ],
    [
      "versions",
      `acc ${report.versions.acc}, node ${report.versions.node}, nginx ${report.versions.nginx}, supervisord ${report.versions.supervisord}`,
    ],
  ];
}

export const statusOperation: Operation<Record<string, never>, StatusReport> = {
  id: "system.status",
  summary: "Show what runs and where: processes, ports, home, versions, instance counts.",
  method: "GET",
  path: "/status",
  input: { type: "object", properties: {}, additionalProperties: false },
  output: {
    type: "object",
    required: ["home", "supervisord", "nginx", "server", "instances", "total", "versions"],
    properties: {
      home: { type: "string" },
      supervisord: { type: "string" },
      nginx: { type: "string" },
      server: { type: "string" },
      exits: { type: "string" },
      postgres: { type: "object" },
      ports: { type: "object" },
      sandbox: { type: "object" },
      cgroups: { type: "object" },
      tls: {
        type: "object",
        properties: {
          mode: { type: "string", enum: ["off", "manual", "acme"] },
          https_port: { type: "integer" },
          warnings: { type: "object", additionalProperties: { type: "string" } },
        },
      },
      instances: { type: "object", additionalProperties: { type: "integer" } },
      total: { type: "integer" },
      versions: { type: "object" },
      disk: {
        type: "object",
        required: ["free_bytes", "total_bytes"],
        properties: {
          free_bytes: {
            type: "integer",
            description: "free to acc's user on the home's filesystem",
          },
          total_bytes: { type: "integer" },
        },
      },
    },
  },
  errors: [],
  permission: "read",
  async run(call) {
    const { status } = await import("../services/system.js");
    return status(call.ctx);
  },
  cli: {
    name: "status",
    usage: "",
    help: [],
    ...NO_ARGS,
    json: true,
    // It must work when acc server is down, and it looks at acc server itself.
    mode: "direct",
    input: () => ({}),
    render(report) {
      const rows = statusRows(report);
      const width = Math.max(...rows.map(([key]) => (key ?? "").length));
      const up = [
        report.supervisord,
        report.nginx,
        report.server,
        report.exits,
        report.ports.state,
      ].every((s) => s === "running");
      return {
        text: rows.map(([k, v]) => `${(k ?? "").padEnd(width)}  ${v}`).join("\n"),
        exitCode: up ? 0 : 1,
      };
    },
  },
};
