import { doctor } from "../services/doctor.js";
import { flag, type Command } from "./command.js";

export const doctorCommand: Command = {
  name: "doctor",
  summary:
    "Compare the store with supervisord, nginx and the files after a crash, and say what is half-made; --repair finishes or undoes it.",
  usage: "[--repair]",
  help: [
    "--repair            bring them back in line (instance data is moved to backups/, never deleted)",
  ],
  options: { repair: { type: "boolean" } },
  positionals: { min: 0, max: 0, names: "" },
  json: true,
  async run(args, cli) {
    const ctx = await cli.open();
    const repair = flag(args, "repair");
    const findings = await doctor(ctx, repair);
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
    return { data: findings, text, exitCode: open.length > 0 ? 1 : 0 };
  },
};
