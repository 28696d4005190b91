export type HomeProcessKind =
  "supervisord" | "nginx" | "postgres" | "acc server" | "acc-ports" | "acc" | "instance";

/** What reports show of a process found: pid, kind, instance. */
export interface HomeProcessSummary {
  pid: number;
  kind: HomeProcessKind;
  instance?: string;
}

/** "nginx (pid 12 and 2 more), instance shop (pids 40, 41)": one group per kind or instance. */
export function describeHomeProcesses(
  procs: readonly (HomeProcessSummary & { leader?: boolean })[],
): string {
  const groups = new Map<string, (HomeProcessSummary & { leader?: boolean })[]>();
  for (const p of procs) {
    const label = p.kind === "instance" ? `instance ${p.instance ?? "?"}` : p.kind;
    groups.set(label, [...(groups.get(label) ?? []), p]);
  }
  return [...groups]
    .map(([label, members]) => {
      const first = members.find((m) => m.leader === true) ?? members[0];
      const more = members.length - 1;
      return `${label} (pid ${first?.pid ?? "?"}${more > 0 ? ` and ${more} more` : ""})`;
    })
    .join(", ");
}
