// When acc's own processes die, and when another acc home runs on the same machine: acc's
// supervisord killed while requests flow (status, doctor and boot after it), ports of a second
// home, and a shutdown that stops slow instances side by side.
import assert from "node:assert/strict";
import { cp, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { processGone, processTrees } from "../src/lib/processes.js";
import {
  FIXTURE_MODELS,
  accOk,
  bootHome,
  instanceView,
  pidFromFile,
  requireRoot,
} from "./harness/attacker.js";
import { createAccHome, type AccHome } from "./harness/acc.js";
import { isAlive } from "./harness/common.js";

const skip = requireRoot();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function homeWith(
  t: TestContext,
  options: { models?: string[]; env?: NodeJS.ProcessEnv; boot?: boolean } = {},
): Promise<AccHome> {
  const acc = await createAccHome(options.env === undefined ? {} : { env: options.env });
  t.after(() => acc.cleanup());
  for (const model of options.models ?? [])
    await cp(path.join(FIXTURE_MODELS, model), path.join(acc.home, "models", model), {
      recursive: true,
    });
  if (options.boot ?? true) await accOk(acc, ["boot"], { timeoutMs: 120_000 });
  return acc;
}

/**
 * Sandboxed, an app dies with supervisord (bubblewrap's --die-with-parent), and the orphaned
 * waker's starts of it fail meanwhile; without the sandbox it goes on, and boot must stop it.
 */
async function crashAndBoot(t: TestContext, sandbox: "off" | "auto"): Promise<void> {
  const acc = await homeWith(t, { models: ["echo"], env: { ACC_SANDBOX: sandbox } });
  const names = [`rv${sandbox}a`, `rv${sandbox}b`];
  for (const name of names) await accOk(acc, ["create", "echo", "--name", name]);

  let flowing = true;
  const answers: { status: number; at: number }[] = [];
  const flow = (async () => {
    while (flowing) {
      const answer = await acc
        .request(`${names[0]}.localhost`, { timeoutMs: 5000 })
        .catch(() => ({ status: 0 }));
      answers.push({ status: answer.status, at: Date.now() });
      await sleep(20);
    }
  })();
  await sleep(300);

  const supervisord = await pidFromFile(path.join(acc.home, "run/supervisord.pid"));
  const generation = ((await processTrees([supervisord])).get(supervisord) ?? []).filter(
    (pid) => pid !== supervisord,
  );
  assert.ok(generation.length >= 6, `supervisord runs ${generation.length} processes`);
  const killedAt = Date.now();
  process.kill(supervisord, "SIGKILL");
  await sleep(800);
  flowing = false;
  await flow;
  assert.ok(
    answers.some((a) => a.at > killedAt && a.status === (sandbox === "off" ? 200 : 503)),
    `the orphaned nginx went on serving the running instance: ${JSON.stringify(answers.map((a) => [a.status, a.at - killedAt]))}`,
  );

  const status = await acc.run(["status", "--json"]);
  const doctor = await acc.run(["doctor"]);
  const boot = await acc.run(["boot"], { timeoutMs: 180_000 });
  assert.equal(boot.code, 0, `acc boot: ${boot.stderr}`);
  assert.match(boot.stdout, /stopped what it left running: .*nginx \(pid \d+/);

  // Before boot, status told what of this home still ran.
  assert.equal(status.code, 1, "not fully up: supervisord is down");
  const report = JSON.parse(status.stdout) as {
    supervisord: string;
    nginx: string;
    server: string;
    orphans: { pid: number; kind: string; instance?: string }[];
  };
  assert.equal(report.supervisord, "stopped");
  assert.equal(report.nginx, "running", "nginx still ran, without supervisord");
  // acc server and acc-ports too, unless they died writing their logs (supervisord held their
  // stdout) as the sandboxed app's death and failed wakes made them speak.
  if (sandbox === "off") assert.equal(report.server, "running");
  const kinds = new Set(report.orphans.map((o) => o.kind));
  for (const kind of [
    "nginx",
    "postgres",
    ...(sandbox === "off" ? ["acc server", "acc-ports"] : []),
  ])
    assert.ok(kinds.has(kind), `status names the orphaned ${kind}: ${status.stdout}`);
  assert.deepEqual(
    [...new Set(report.orphans.flatMap((o) => (o.instance ? [o.instance] : [])))].sort(),
    sandbox === "off" ? names : [],
    "the instances that outlived supervisord",
  );
  for (const orphan of report.orphans)
    assert.ok(generation.includes(orphan.pid), `pid ${orphan.pid} is of the old generation`);
  // And doctor explained it.
  assert.equal(doctor.code, 1);
  assert.match(
    doctor.stdout,
    sandbox === "off"
      ? /supervisord of this home is not running but \d+ of its processes are: .*nginx \(pid \d+.*instance rvoffa.* -> run acc boot/
      : /supervisord of this home is not running but \d+ of its processes are: .*nginx \(pid \d+.* -> run acc boot/,
  );

  // Postgres was shut down cleanly (its orphan's own log went with supervisord's pipe): the
  // new one says so, where a kill or an immediate shutdown would make it recover.
  const pgLog = await readFile(path.join(acc.home, "supervisor/logs/acc-postgres.log"), "utf8");
  const lastStart = pgLog.slice(pgLog.lastIndexOf("starting PostgreSQL"));
  assert.match(lastStart, /database system was shut down at/);
  assert.doesNotMatch(lastStart, /was interrupted|automatic recovery/);
  // Nothing of the old generation is left.
  // A zombie is gone too: this machine's PID 1 may reap orphans late.
  const left: string[] = [];
  for (const pid of generation) {
    if (await processGone(pid)) continue;
    const command = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "?");
    left.push(`${pid} ${command.split("\0").join(" ").trim()}`);
  }
  assert.deepEqual(left, [], "old-generation processes still alive");

  // All recorded stopped, none kept failed by the orphaned waker's doomed wakes.
  for (const name of names) assert.equal((await instanceView(acc, name)).state, "stopped", name);
  // Every instance answers again (they were recorded stopped and wake on their request).
  for (const name of names) {
    const answer = await acc.request(`${name}.localhost`, { timeoutMs: 30_000 });
    assert.equal(answer.status, 200, answer.body);
    assert.match(answer.body, new RegExp(`"instance":"${name}"`));
  }
  const after = JSON.parse(await accOk(acc, ["status", "--json"])) as {
    supervisord: string;
    orphans: unknown[];
  };
  assert.equal(after.supervisord, "running");
  assert.deepEqual(after.orphans, []);
}

for (const sandbox of ["off", "auto"] as const) {
  test(
    `acc's supervisord killed while requests flow (sandbox ${sandbox}): status and doctor name the orphans, boot stops them and starts everything again`,
    { skip, timeout: 300_000 },
    (t) => crashAndBoot(t, sandbox),
  );
}

test(
  "a second home: init picks free ports for taken defaults, boot names a held port's holder and its home",
  { skip, timeout: 300_000 },
  async (t) => {
    // The first home on the default ports (the harness gives every test home free ones).
    const first = await homeWith(t, {
      env: { ACC_SERVER_PORT: "9713", ACC_POSTGRES_PORT: "15432" },
    });

    const second = await homeWith(t, {
      env: { ACC_SERVER_PORT: undefined, ACC_POSTGRES_PORT: undefined },
      boot: false,
    });
    // As a new home: acc.toml made by this init.
    await rm(path.join(second.home, "acc.toml"));
    const init = await second.run(["init", "--no-install"]);
    assert.equal(init.code, 0, init.stderr);
    const toml = await readFile(path.join(second.home, "acc.toml"), "utf8");
    const serverPort = Number(/^server_port = (\d+)$/m.exec(toml)?.[1]);
    const postgresPort = Number(/^postgres_port = (\d+)$/m.exec(toml)?.[1]);
    assert.ok(serverPort > 0 && serverPort !== 9713, toml);
    assert.ok(postgresPort > 0 && postgresPort !== 15432, toml);
    const firstHome = first.home.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    assert.match(
      init.stdout,
      new RegExp(
        `server_port = ${serverPort}, since its default 9713 is taken: port 9713 is held by .*pid \\d+ .*, of the acc home ${firstHome}`,
      ),
    );
    assert.match(init.stdout, new RegExp(`postgres_port = ${postgresPort}, since its default`));
    // Side by side: the second home boots on its own ports.
    await accOk(second, ["boot"], { timeoutMs: 120_000 });
    assert.equal((await second.run(["status"])).code, 0);

    // A third home told to use the first home's ports: boot names the port, its holder, its home.
    const third = await homeWith(t, { boot: false });
    const own = { ...third.env };
    const cases: [string, string, RegExp][] = [
      ["ACC_SERVER_PORT", "9713", /^acc: server_port: port 9713 is held by .*pid \d+ \(.*acc\.mjs/],
      [
        "ACC_POSTGRES_PORT",
        "15432",
        /^acc: postgres_port: port 15432 is held by .*pid \d+ \(.*postgres/,
      ],
      [
        "ACC_HTTP_PORT",
        String(first.httpPort),
        /^acc: http_port: port \d+ is held by .*pid \d+ \(nginx: master/,
      ],
    ];
    for (const [key, value, expected] of cases) {
      Object.assign(third.env, own, { [key]: value });
      const boot = await third.run(["boot"], { timeoutMs: 120_000 });
      assert.equal(boot.code, 1, `${key}: ${boot.stdout} ${boot.stderr}`);
      const line = boot.stderr.split("\n")[0] ?? "";
      assert.match(line, expected);
      assert.ok(line.includes(`, of the acc home ${first.home} (`), line);
      assert.doesNotMatch(boot.stderr, /not reachable|is acc booted|bug/);
      const started = await pidFromFile(path.join(third.home, "run/supervisord.pid")).catch(
        () => undefined,
      );
      assert.ok(started === undefined || !isAlive(started), "nothing of the third home started");
    }
    Object.assign(third.env, own);
  },
);

test(
  "acc shutdown stops slow instances side by side: about one stop_timeout, not one each",
  { skip, timeout: 300_000 },
  async (t) => {
    const acc = await bootHome(t, ["stubborn"]);
    const names = ["rvslow1", "rvslow2", "rvslow3", "rvslow4", "rvslow5"];
    for (const name of names) await accOk(acc, ["create", "stubborn", "--name", name]);
    const started = Date.now();
    const out = await accOk(acc, ["shutdown"]);
    const ms = Date.now() - started;
    assert.match(out, /stopped 5 instance/);
    // Each ignores SIGTERM for its 3 s stop_timeout: one after another would take 15 s.
    assert.ok(ms >= 3000, `took ${ms} ms: the stops did wait for their stop_timeout`);
    assert.ok(ms < 9000, `took ${ms} ms for 5 stops of 3 s each`);
    t.diagnostic(`shutdown of 5 instances with a 3 s stop_timeout each: ${ms} ms`);
  },
);
