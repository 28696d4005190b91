// Containment: every process of an instance is in its own cgroup, so a stop, a shutdown and a
// destroy leave none behind (detached children included), doctor finds and kills what is left in
// a stopped instance's cgroup, limits reach the kernel's files (live), and a memory hog is
// OOM-killed inside its own cgroup only. Real supervisord and nginx, as root.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, cp, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { openSqliteStore } from "../src/store/open.js";
import { createAccHome, type AccHome } from "./harness/acc.js";
import { waitFor } from "./harness/common.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const MODEL = path.resolve(here, "../../test/fixtures/models/cgtree");
const asRoot = process.getuid?.() === 0;

interface Layout {
  kind: string;
  groups: { dir: string; version: 1 | 2; controllers: string[] }[];
}

/** A live process: not gone, not a zombie waiting for its parent. */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

async function layoutOf(acc: AccHome): Promise<Layout> {
  const state = JSON.parse(await readFile(path.join(acc.home, "run/cgroups.json"), "utf8")) as {
    enabled: boolean;
    layout: Layout;
  };
  assert.equal(state.enabled, true, "cgroups are enabled here (root)");
  return state.layout;
}

async function childPid(acc: AccHome, name: string): Promise<number> {
  const file = path.join(acc.home, "instances", name, "data/child.pid");
  return waitFor(`${name}'s child`, async () => {
    const text = await readFile(file, "utf8").catch(() => "");
    return /^\d+\n$/.test(text) ? Number(text) : undefined;
  });
}

async function lastEvent(
  acc: AccHome,
  name: string,
  action: string,
): Promise<{ outcome: string; message: string | null } | undefined> {
  const store = openSqliteStore(path.join(acc.home, "state.db"));
  try {
    return (await store.listEvents({ instance: name, limit: 100 })).find(
      (e) => e.action === action,
    );
  } finally {
    await store.close();
  }
}

test(
  "cgroups: nothing of an instance outlives its stop, shutdown or destroy; limits; OOM",
  { skip: asRoot ? false : "needs root (instances' users, cgroups)", timeout: 300_000 },
  async (t) => {
    // Without the sandbox, whose PID namespace would end the children with the app: the cgroup
    // alone must contain them.
    const acc = await createAccHome({ env: { ACC_SANDBOX: "off" } });
    t.after(() => acc.cleanup());
    await cp(MODEL, path.join(acc.home, "models/cgtree"), { recursive: true });
    await acc.ok(["boot"]);
    const layout = await layoutOf(acc);
    const dirOf = (name: string): string => `${layout.groups[0]?.dir ?? "?"}/${name}`;
    const procs = async (name: string): Promise<number[]> =>
      (await readFile(`${dirOf(name)}/cgroup.procs`, "utf8").catch(() => ""))
        .split("\n")
        .filter(Boolean)
        .map(Number);

    await t.test(
      "a setsid child is in the instance's cgroup, and gone after acc stop",
      async () => {
        await acc.ok(["create", "cgtree", "--name", "cgsetsid"]);
        const child = await childPid(acc, "cgsetsid");
        assert.ok(await alive(child));
        assert.ok((await procs("cgsetsid")).includes(child), "the child is in the cgroup");
        await acc.ok(["stop", "cgsetsid"]);
        assert.equal(await alive(child), false, "the detached child is gone");
        assert.deepEqual(await procs("cgsetsid"), [], "the cgroup is empty");
      },
    );

    await t.test(
      "a child keeping the socket and ignoring SIGTERM: killed after stop_timeout, said so; acc start works",
      async () => {
        await acc.ok(["create", "cgtree", "--name", "cgsocket", "--param", "mode=socket"]);
        const child = await childPid(acc, "cgsocket");
        await acc.ok(["stop", "cgsocket"]);
        assert.equal(await alive(child), false, "the child holding the socket is gone");
        assert.deepEqual(await procs("cgsocket"), []);
        assert.match((await lastEvent(acc, "cgsocket", "stop"))?.message ?? "", /SIGKILL after 2s/);
        await acc.ok(["start", "cgsocket"]);
        const answer = await acc.request("cgsocket.localhost");
        assert.equal(answer.status, 200);
        await acc.ok(["stop", "cgsocket"]);
      },
    );

    await t.test(
      "doctor reports and --repair kills a process left in a stopped instance's cgroup",
      async () => {
        await acc.ok(["create", "cgtree", "--name", "cgdoc", "--no-start"]);
        await acc.ok(["start", "cgdoc"]);
        await acc.ok(["stop", "cgdoc"]);
        // A process planted in the cgroup (as a crashed app's child would be left there).
        const planted = spawn("sleep", ["1000"], {
          detached: true,
          stdio: "ignore",
          uid: 65534,
          gid: 65534,
        });
        const pid = planted.pid ?? 0;
        planted.unref();
        t.after(() => {
          try {
            process.kill(pid, "SIGKILL");
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
          }
        });
        for (const group of layout.groups)
          await writeFile(`${group.dir}/cgdoc/cgroup.procs`, String(pid));
        const found = await acc.run(["doctor"]);
        assert.equal(found.code, 1, found.stdout);
        assert.match(
          found.stdout,
          new RegExp(
            `cgdoc: 1 process left in its cgroup although it is stopped \\(${pid} sleep\\)`,
          ),
        );
        assert.ok(await alive(pid), "doctor without --repair kills nothing");
        await acc.run(["doctor", "--repair"]);
        await waitFor(
          "the planted process to go",
          async () => ((await alive(pid)) ? undefined : true),
          5000,
        );
        assert.deepEqual(await procs("cgdoc"), []);
      },
    );

    await t.test(
      "limits reach the cgroup, change live, and a bad value changes nothing",
      async () => {
        await acc.ok([
          "create",
          "cgtree",
          "--name",
          "cglimit",
          "--limit",
          "memory=256M",
          "--limit",
          "cpu=0.5",
          "--limit",
          "pids=100",
        ]);
        const file = async (controller: string, name: string): Promise<string> => {
          const group = layout.groups.find((g) => g.controllers.includes(controller));
          assert.ok(group, `a ${controller} controller`);
          return (await readFile(`${group.dir}/cglimit/${name}`, "utf8")).trim();
        };
        const v1 = layout.kind !== "v2";
        assert.equal(
          await file("memory", v1 ? "memory.limit_in_bytes" : "memory.max"),
          String(256 * 1024 ** 2),
        );
        assert.equal(await file("pids", "pids.max"), "100");
        if (v1) assert.equal(await file("cpu", "cpu.cfs_quota_us"), "50000");
        else assert.equal(await file("cpu", "cpu.max"), "50000 100000");
        await acc.ok(["set", "cglimit", "memory=512M", "pids=none"]);
        assert.equal(
          await file("memory", v1 ? "memory.limit_in_bytes" : "memory.max"),
          String(512 * 1024 ** 2),
          "applied live",
        );
        assert.equal(await file("pids", "pids.max"), "max");
        // acc.toml's default applies once the instance's own is dropped (default), live.
        await writeFile(
          path.join(acc.home, "acc.toml"),
          `${await readFile(path.join(acc.home, "acc.toml"), "utf8")}\npids_limit = 50\n`,
        );
        await acc.ok(["set", "cglimit", "pids=default"]);
        assert.equal(await file("pids", "pids.max"), "50");
        const bad = await acc.run(["set", "cglimit", "memory=lots"]);
        assert.equal(bad.code, 2);
        assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
        assert.match(bad.stderr, /invalid memory limit "lots"/);
        assert.equal(
          await file("memory", v1 ? "memory.limit_in_bytes" : "memory.max"),
          String(512 * 1024 ** 2),
          "unchanged",
        );
        const shown = JSON.parse(await acc.ok(["show", "cglimit", "--json"])) as {
          limits: Record<string, unknown>;
          memory_bytes: number;
        };
        assert.equal(shown.limits.memory, 512 * 1024 ** 2);
        assert.ok(shown.memory_bytes > 1024 * 1024, "memory from the cgroup");
        const badCreate = await acc.run([
          "create",
          "cgtree",
          "--name",
          "cgbad",
          "--limit",
          "cpu=x",
        ]);
        assert.equal(badCreate.code, 2);
        assert.equal((await acc.run(["show", "cgbad"])).code, 3, "nothing created");
        await acc.ok(["stop", "cglimit"]);
      },
    );

    await t.test(
      "a memory hog is OOM-killed in its own cgroup; another instance is untouched",
      async () => {
        await acc.ok(["create", "cgtree", "--name", "cgother"]);
        const other = await childPid(acc, "cgother");
        await acc.ok([
          "create",
          "cgtree",
          "--name",
          "cghog",
          "--param",
          "mode=hog",
          "--limit",
          "memory=96M",
        ]);
        const answer = await acc.request("cghog.localhost", { path: "/hog", timeoutMs: 30_000 });
        assert.notEqual(answer.status, 200);
        const shown = JSON.parse(await acc.ok(["show", "cghog", "--json"])) as {
          oom_kills: number;
        };
        assert.ok(shown.oom_kills >= 1, `oom_kills ${shown.oom_kills}`);
        // The exit listener records the app's death at once, as an oom crash.
        let crash: { action: string; cause: string | null; message: string } | undefined;
        for (let tries = 0; tries < 50 && crash === undefined; tries++) {
          const events = JSON.parse(await acc.ok(["events", "cghog", "--json"])) as {
            action: string;
            cause: string | null;
            message: string;
          }[];
          crash = events.find((e) => e.action === "crash");
          if (crash === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.equal(crash?.cause, "oom", JSON.stringify(crash));
        assert.ok(await alive(other), "the other instance's processes live");
        assert.equal((await acc.request("cgother.localhost")).status, 200);
        await acc.ok(["stop", "cghog"]);
        await acc.ok(["start", "cghog"]);
        const again = JSON.parse(await acc.ok(["show", "cghog", "--json"])) as {
          oom_kills: number;
        };
        assert.equal(again.oom_kills, 0, "a start counts from 0 again");
        await acc.ok(["stop", "cghog"]);
      },
    );

    await t.test("destroy leaves no process and no cgroup", async () => {
      await acc.ok(["create", "cgtree", "--name", "cgdestroy"]);
      const child = await childPid(acc, "cgdestroy");
      await acc.ok(["destroy", "cgdestroy", "--yes", "--no-backup"]);
      assert.equal(await alive(child), false);
      for (const group of layout.groups)
        assert.equal(await exists(`${group.dir}/cgdestroy`), false);
    });

    await t.test("shutdown leaves no process in any instance's cgroup, and no cgroup", async () => {
      await rm(path.join(acc.home, "instances/cgsetsid/data/child.pid"), { force: true });
      await acc.ok(["start", "cgsetsid"]);
      const child = await childPid(acc, "cgsetsid");
      await acc.ok(["shutdown"]);
      assert.equal(await alive(child), false);
      for (const group of layout.groups) assert.equal(await exists(group.dir), false, group.dir);
    });
  },
);
