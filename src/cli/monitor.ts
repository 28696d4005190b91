import { idleMessage, monitorPass, type MonitorReport } from "../services/monitor.js";
import { flag, type Command } from "./command.js";

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

export const monitorCommand: Command = {
  name: "monitor",
  summary:
    "Stop the instances idle for longer than their idle timeout (one pass, for cron; acc server runs it on its own).",
  usage: "[--dry-run] [--json]",
  help: ["--dry-run           say what would be stopped, stop nothing"],
  options: { "dry-run": { type: "boolean" } },
  positionals: { min: 0, max: 0, names: "" },
  json: true,
  async run(args, cli) {
    const dryRun = flag(args, "dry-run");
    const ctx = await cli.open();
    const report = await monitorPass(ctx, { dryRun });
    return {
      data: report,
      text: renderMonitorReport(report, dryRun),
      exitCode: report.errors.length > 0 ? 1 : 0,
    };
  },
};
