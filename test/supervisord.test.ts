import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { homePaths, type HomePaths } from "../src/core/paths.js";
import { createSupervisorClient } from "../src/drivers/supervisord/client.js";
import {
  createSupervisor,
  type ServiceProgram,
  type Supervisor,
} from "../src/drivers/supervisord/index.js";
import { renderProgram, renderSupervisordConf } from "../src/drivers/supervisord/render.js";
import { exec } from "../src/lib/exec.js";
import { freePort, makeTempDir, removeDir, requireBinary, waitFor } from "./harness/common.js";

const SUPERVISORD = "/usr/bin/supervisord";
const skip = requireBinary(existsSync(SUPERVISORD), "supervisord");

// Words that each need one of the renderer's escapes; the server echoes them back.
const TRICKY_ARGS = ["a b", "it's", 'say "hi"', "x ;y", "x #y", "100%", "%(here)s", "", "日本"];

const SERVER_JS = `
import http from "node:http";
const [port, ...args] = process.argv.slice(2);
process.on("SIGTERM", () => { console.log("got SIGTERM"); process.exit(0); });
http
  .createServer((req, res) => res.end(JSON.stringify({ pid: process.pid, args })))
  .listen(Number(port), "127.0.0.1", () => console.log("listening on " + port));
`;

/** Gone, or a zombie: a daemon's parent here may be slow to reap it. */
async function gone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat === "" || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

async function waitGone(what: string, pid: number, timeoutMs = 5000): Promise<void> {
  await waitFor(what, async () => ((await gone(pid)) ? true : undefined), timeoutMs);
}

async function get(port: number): Promise<{ pid: number; args: string[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
  return (await res.json()) as { pid: number; args: string[] };
}

interface Booted {
  dir: string;
  paths: HomePaths;
  sup: Supervisor;
  supervisordPid: number;
}

/**
 * A fresh home with a running supervisord. Teardown shuts it down (which stops its programs);
 * should that fail, it kills supervisord and the process groups of the pids it was given, by pid,
 * and removes the folder only after.
 */
async function boot(
  t: TestContext,
  childPids: Set<number>,
  services: (dir: string) => ServiceProgram[] = () => [],
): Promise<Booted> {
  const dir = await makeTempDir("acc-supervisord-");
  const paths = homePaths(dir);
  const sup = createSupervisor({ paths, exec, timeoutMs: 5000, supervisordBin: SUPERVISORD });
  t.after(async () => {
    try {
      await sup.shutdown({ timeoutMs: 15_000 });
    } catch (error) {
      const pidText = await readFile(paths.supervisorPid, "utf8").catch(() => "");
      const supervisordPid = pidText.trim() === "" ? undefined : Number(pidText);
      for (const pid of [supervisordPid, ...childPids]) {
        if (pid === undefined || (await gone(pid))) continue;
        try {
          process.kill(pid === supervisordPid ? pid : -pid, "SIGKILL");
        } catch {
          // Exited between the check and the kill.
        }
      }
      throw error;
    } finally {
      await removeDir(dir);
    }
  });
  await sup.writeMainConfig(services(dir));
  await sup.start();
  const supervisordPid = Number((await readFile(paths.supervisorPid, "utf8")).trim());
  return { dir, paths, sup, supervisordPid };
}

test(
  "supervisord driver: programs start, answer, stop and go away",
  { skip, timeout: 30_000 },
  async (t) => {
    const childPids = new Set<number>();
    // An acc service: autostarted by supervisord, and reports the signals it gets.
    const { dir, paths, sup, supervisordPid } = await boot(t, childPids, (home) => [
      {
        name: "acc-svc",
        command: [
          process.execPath,
          "-e",
          `process.on('SIGHUP', () => console.log("got HUP")); setInterval(() => {}, 1000);`,
        ],
        logFile: path.join(home, "svc", "svc.log"),
        stopTimeoutSec: 2,
      },
    ]);
    const rpc = createSupervisorClient({ socketPath: paths.supervisorSocket, timeoutMs: 5000 });
    const script = path.join(dir, "server.mjs");
    await writeFile(script, SERVER_JS);

    assert.equal(await sup.isRunning(), true);
    await sup.start(); // already running: nothing happens
    assert.equal(Number((await readFile(paths.supervisorPid, "utf8")).trim()), supervisordPid);

    const svcLog = path.join(dir, "svc", "svc.log");
    await waitFor("the service to run", async () => {
      const info = await rpc.call("supervisor.getProcessInfo", ["acc-svc"]);
      return (info as { statename?: string }).statename === "RUNNING" ? true : undefined;
    });
    await sup.signalService("acc-svc", "HUP");
    await waitFor("the service to log SIGHUP", async () =>
      (await readFile(svcLog, "utf8").catch(() => "")).includes("got HUP") ? true : undefined,
    );
    await assert.rejects(sup.signalService("nope", "HUP"), { code: "ACC_SUPERVISOR" });

    const port = await freePort();
    const web = (p: number, extra: string[]) => ({
      name: "web",
      command: [process.execPath, script, String(p), ...extra],
      directory: dir,
      logFile: path.join(dir, "web", "logs", "app.log"),
      stopTimeoutSec: 5,
    });

    assert.equal(await sup.programState("web"), null);
    await sup.writeProgram(web(port, TRICKY_ARGS));
    assert.ok(existsSync(path.join(paths.programs, "web.conf")));
    assert.ok(
      !existsSync(path.join(paths.programsActive, "web.conf")),
      "writeProgram does not load it",
    );

    const pid = await sup.startProgram("web");
    childPids.add(pid);
    const answer = await waitFor("web to answer", () => get(port));
    assert.deepEqual(answer, { pid, args: TRICKY_ARGS });
    assert.deepEqual(
      { ...(await sup.programState("web")), description: "" },
      { state: "RUNNING", pid, exitStatus: 0, description: "", spawnError: "" },
    );
    assert.deepEqual(
      [...(await sup.allProgramStates()).keys()],
      ["web"],
      "instances only, not services",
    );
    assert.equal(await sup.startProgram("web"), pid, "starting a running program keeps it");
    await waitFor("the log line", async () =>
      (await sup.tailLog("web", 1000)).includes("listening on") ? 1 : undefined,
    );

    // Loaded but stopped with an older file (as after a crash): startProgram reloads the new file.
    await rpc.call("supervisor.stopProcess", ["i-web:i-web", true]);
    await waitGone("web's first process", pid);
    const port2 = await freePort();
    await sup.writeProgram(web(port2, ["second"]));
    const pid2 = await sup.startProgram("web");
    childPids.add(pid2);
    assert.deepEqual(await waitFor("web on its new port", () => get(port2)), {
      pid: pid2,
      args: ["second"],
    });

    await sup.stopProgram("web");
    assert.equal(await gone(pid2), true, "stopProgram waits for the process to exit");
    // A stopped program stays loaded, so its next start needs no reloadConfig. acc sends the
    // SIGTERM itself: supervisord sees the process exit (EXITED), or, when its stop call comes
    // before it reaped the process, stops what is left (STOPPED).
    assert.ok(
      ["EXITED", "STOPPED"].includes((await sup.programState("web"))?.state ?? ""),
      "a stopped program stays loaded",
    );
    assert.ok(existsSync(path.join(paths.programsActive, "web.conf")));
    const pid3 = await sup.startProgram("web");
    assert.equal(pid3, 0, "the fast path starts it with one call and does not ask for the pid");
    const again = await waitFor("web to answer after a fast start", () => get(port2));
    childPids.add(again.pid);
    await sup.stopProgram("web", { unload: true });
    assert.equal(await gone(again.pid), true);
    assert.equal(await sup.programState("web"), null, "unload: true unloads it");
    assert.ok(!existsSync(path.join(paths.programsActive, "web.conf")));
    assert.ok(
      existsSync(path.join(paths.programs, "web.conf")),
      "its program file stays for the next start",
    );
    assert.match(await sup.tailLog("web", 10_000), /got SIGTERM/);
    await sup.stopProgram("web"); // idempotent

    // A process that ignores SIGTERM, with a child of its own: both are killed after stopwaitsecs.
    const grandchildPidFile = path.join(dir, "grandchild.pid");
    await sup.writeProgram({
      name: "stubborn",
      command: ["/bin/sh", "-c", `trap '' TERM; sleep 60 & echo $! > ${grandchildPidFile}; wait`],
      directory: dir,
      logFile: path.join(dir, "stubborn.log"),
      stopTimeoutSec: 1,
    });
    const stubbornPid = await sup.startProgram("stubborn");
    childPids.add(stubbornPid);
    const grandchildPid = await waitFor("the grandchild's pid", async () => {
      const text = await readFile(grandchildPidFile, "utf8").catch(() => "");
      return text.endsWith("\n") ? Number(text) : undefined;
    });
    const stopStarted = Date.now();
    await sup.stopProgram("stubborn");
    const stopMs = Date.now() - stopStarted;
    assert.ok(stopMs >= 900 && stopMs < 5000, `stopped after ${stopMs} ms, stopwaitsecs=1`);
    assert.equal(await gone(stubbornPid), true);
    await waitGone("the grandchild", grandchildPid, 2000);
    t.diagnostic(`SIGTERM ignored: killed after ${stopMs} ms`);

    // Starts at the same time share reloads (see startProgram) and each gets its own process.
    const sleepers = ["s1", "s2", "s3"];
    for (const name of sleepers) {
      await sup.writeProgram({ ...web(port, []), name, command: ["/bin/sleep", "60"] });
    }
    const sleeperPids = await Promise.all(sleepers.map((name) => sup.startProgram(name)));
    sleeperPids.forEach((p) => childPids.add(p));
    assert.equal(new Set(sleeperPids).size, 3);
    // "stubborn" was stopped above and stays loaded (STOPPED): only the sleepers run.
    const states = await sup.allProgramStates();
    assert.deepEqual([...states.keys()].sort(), [...sleepers, "stubborn"]);
    assert.equal(states.get("stubborn")?.state, "STOPPED");
    await Promise.all(sleepers.map((name) => sup.removeProgram(name)));
    for (const p of sleeperPids) assert.equal(await gone(p), true);

    // A command that cannot run fails the start with its reason.
    await sup.writeProgram({
      ...web(port, []),
      name: "broken",
      command: [path.join(dir, "missing")],
    });
    await assert.rejects(sup.startProgram("broken"), {
      code: "ACC_START_FAILED",
      message: /instance broken: .*missing/,
    });
    await sup.removeProgram("broken");

    for (const name of ["web", "stubborn"]) {
      await sup.removeProgram(name);
      await sup.removeProgram(name); // idempotent
      assert.ok(!existsSync(path.join(paths.programs, `${name}.conf`)));
    }
    assert.equal((await sup.allProgramStates()).size, 0);

    await sup.shutdown();
    await waitGone("supervisord", supervisordPid, 1000);
    assert.equal(await sup.isRunning(), false);
    await sup.shutdown(); // idempotent
    await assert.rejects(sup.startProgram("web"), { code: "ACC_SUPERVISOR" }); // its file is gone
    await assert.rejects(sup.programState("web"), {
      code: "ACC_NOT_BOOTED",
      message: `acc's supervisord is not running (socket ${paths.supervisorSocket})`,
    });
  },
);

test(
  "supervisord driver: start fails with supervisord's own error",
  { skip, timeout: 15_000 },
  async (t) => {
    const dir = await makeTempDir("acc-supervisord-");
    t.after(() => removeDir(dir));
    const sup = createSupervisor({
      paths: homePaths(dir),
      exec,
      timeoutMs: 5000,
      supervisordBin: SUPERVISORD,
    });
    // No config written: supervisord exits at once, nothing is left running.
    await assert.rejects(sup.start(), {
      code: "ACC_SUPERVISOR",
      message: /could not start supervisord/,
    });
    const missing = createSupervisor({
      paths: homePaths(dir),
      exec,
      supervisordBin: path.join(dir, "nope"),
    });
    await assert.rejects(missing.start(), { code: "ACC_ENV" });
  },
);

// The renderer's escapes, read back by supervisor's own parser (the Python that runs supervisord).
test(
  "supervisord reads back exactly what the renderer meant",
  { skip, timeout: 15_000 },
  async (t) => {
    const dir = await makeTempDir("acc-supervisord-");
    t.after(() => removeDir(dir));
    const paths = homePaths(dir);
    const words = [
      "/bin/echo",
      ...TRICKY_ARGS,
      ";",
      "#",
      "'",
      "a\u00a0;b",
      "\x1c#",
      "%%(here)s",
      "%(ENV_HOME)s",
      "$HOME `id` \\n *",
      "tab\there",
    ];
    const env = {
      A: "x;y",
      B: "100%",
      C: "it's",
      D: 'say "hi" now',
      E: "a,b=c",
      F: "",
      G: "tab\tin",
    };
    await exec("mkdir", [
      "-p",
      paths.programsActive,
      paths.run,
      `${paths.supervisor}/logs`,
      path.join(dir, "a b"),
    ]);
    await writeFile(
      paths.supervisorConf,
      renderSupervisordConf({
        paths,
        programs: [{ name: "svc", command: words, logFile: `${dir}/svc.log`, env }],
      }),
    );
    await writeFile(
      path.join(paths.programsActive, "p.conf"),
      renderProgram({
        name: "p",
        command: words,
        directory: `${dir}/a b`,
        logFile: `${dir}/p.log`,
        stopTimeoutSec: 3,
      }),
    );
    const python =
      (await readFile(SUPERVISORD, "utf8"))
        .split("\n")[0]
        ?.replace(/^#!\s*/, "")
        .split(" ") ?? [];
    const parse = `
import json, shlex, sys
from supervisor.options import ServerOptions
o = ServerOptions()
o.configfile = sys.argv[1]
o.process_config(do_usage=False)
print(json.dumps({p.name: {"argv": shlex.split(p.command), "env": p.environment, "dir": p.directory}
                  for g in o.process_group_configs for p in g.process_configs}))
`;
    const [interpreter = "python3", ...flags] = python;
    const { stdout } = await exec(interpreter, [...flags, "-c", parse, paths.supervisorConf], {
      timeoutMs: 10_000,
    });
    const parsed = JSON.parse(stdout) as Record<
      string,
      { argv: string[]; env: Record<string, string>; dir: string }
    >;
    assert.deepEqual(parsed.svc?.argv, words);
    assert.deepEqual(parsed.svc?.env, env);
    assert.deepEqual(parsed["i-p"]?.argv, words);
    assert.equal(parsed["i-p"]?.dir, `${dir}/a b`);
  },
);
