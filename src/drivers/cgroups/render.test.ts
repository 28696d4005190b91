import assert from "node:assert/strict";
import { test } from "node:test";
import {
  instanceDirs,
  limitFiles,
  parseOomKills,
  parseProcCgroup,
  planLayout,
  workingSet,
  type HostCgroups,
} from "./render.js";

// This machine's kind: v1 controllers, a controller-less v2 at /sys/fs/cgroup/unified.
const HYBRID: HostCgroups = {
  root: "/sys/fs/cgroup",
  unifiedRoot: false,
  v2Controllers: [],
  hybridUnified: true,
  v1Controllers: ["memory", "cpu", "pids"],
  procSelfCgroup: [
    "9:name=systemd:/",
    "8:pids:/",
    "4:memory:/process_api/abc",
    "2:cpu,cpuacct:/",
    "0::/",
    "",
  ].join("\n"),
};

// A systemd host: acc's unit has Delegate=yes.
const V2: HostCgroups = {
  root: "/sys/fs/cgroup",
  unifiedRoot: true,
  v2Controllers: ["cpuset", "cpu", "io", "memory", "pids"],
  hybridUnified: false,
  v1Controllers: [],
  procSelfCgroup: "0::/system.slice/acc.service\n",
};

test("parseProcCgroup maps each controller (and v2's '') to its path", () => {
  const own = parseProcCgroup(HYBRID.procSelfCgroup);
  assert.equal(own.get(""), "/");
  assert.equal(own.get("memory"), "/process_api/abc");
  assert.equal(own.get("cpu"), "/");
  assert.equal(own.get("cpuacct"), "/");
  assert.equal(own.get("name=systemd"), "/");
});

test("hybrid: membership in the unified v2 group first, v1 groups for limits, under our own", () => {
  const layout = planLayout(HYBRID, "acc-123");
  assert.deepEqual(layout, {
    kind: "hybrid",
    groups: [
      { dir: "/sys/fs/cgroup/unified/acc-123", version: 2, controllers: [] },
      { dir: "/sys/fs/cgroup/memory/process_api/abc/acc-123", version: 1, controllers: ["memory"] },
      { dir: "/sys/fs/cgroup/cpu/acc-123", version: 1, controllers: ["cpu"] },
      { dir: "/sys/fs/cgroup/pids/acc-123", version: 1, controllers: ["pids"] },
    ],
  });
  assert.deepEqual(instanceDirs(layout, "cg1")[0], "/sys/fs/cgroup/unified/acc-123/cg1");
});

test("v2: one group in the delegated subtree of acc's unit, with the controllers offered", () => {
  assert.deepEqual(planLayout(V2, "acc-123"), {
    kind: "v2",
    groups: [
      {
        dir: "/sys/fs/cgroup/system.slice/acc.service/acc-123",
        version: 2,
        controllers: ["memory", "cpu", "pids"],
      },
    ],
  });
});

test("no cgroup filesystem: no layout", () => {
  assert.equal(
    planLayout({ ...HYBRID, hybridUnified: false, v1Controllers: [] }, "acc-1"),
    undefined,
  );
});

test("limitFiles: v1 and v2 files, and the 'no limit' values that lift a removed limit", () => {
  const [v2] = planLayout(V2, "a")!.groups;
  assert.deepEqual(limitFiles(v2!, { memory: 64 * 1024 ** 2, cpu: 0.5, pids: 100 }), [
    { file: "memory.max", value: "67108864" },
    { file: "memory.swap.max", value: "0" },
    { file: "cpu.max", value: "50000 100000" },
    { file: "pids.max", value: "100" },
  ]);
  assert.deepEqual(limitFiles(v2!, {}), [
    { file: "memory.max", value: "max" },
    { file: "memory.swap.max", value: "max" },
    { file: "cpu.max", value: "max 100000" },
    { file: "pids.max", value: "max" },
  ]);
  const groups = planLayout(HYBRID, "a")!.groups;
  assert.deepEqual(
    groups.flatMap((g) => limitFiles(g, { memory: 1024 ** 3, cpu: 2 })),
    [
      { file: "memory.limit_in_bytes", value: "1073741824" },
      { file: "cpu.cfs_period_us", value: "100000" },
      { file: "cpu.cfs_quota_us", value: "200000" },
      { file: "pids.max", value: "max" },
    ],
  );
  assert.deepEqual(limitFiles(groups[1]!, {}), [{ file: "memory.limit_in_bytes", value: "-1" }]);
});

test("parseOomKills reads memory.events (v2) and memory.oom_control (v1)", () => {
  assert.equal(parseOomKills("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n"), 1);
  assert.equal(parseOomKills("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 3);
  assert.equal(parseOomKills(""), 0);
});

test("workingSet: usage minus the inactive file cache", () => {
  assert.equal(workingSet(1000, "anon 600\ninactive_file 300\n", 2), 700);
  assert.equal(workingSet(1000, "cache 400\ntotal_inactive_file 100\n", 1), 900);
  assert.equal(workingSet(1000, "", 1), 1000);
});
