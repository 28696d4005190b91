// acc upgrade and acc rollback against real nginx, supervisord and Postgres: guestbook 1.0.0 to
// 1.1.0 with its schema migrated and its entries kept; a failing upgrade command, and a health
// check that never passes, rolled back wholly (code, files, database, state); a batch stopped by
// --max-failures; a sleeping instance upgraded without a start; acc rollback.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { parseEnvFile } from "../src/core/instance-env.js";
import { pathExists } from "../src/lib/files.js";
import type { AccHome } from "./harness/acc.js";
import {
  accOk,
  bootHome,
  FIXTURE_MODELS,
  requireRoot,
  runAcc,
  startCount,
} from "./harness/attacker.js";
import { guestbookEntries, sign } from "./harness/guestbook.js";
import { instanceDatabaseUrl, queryDatabase } from "./harness/postgres.js";
import { ACC_MODELS, putModel, show, upgrade, withVersion, type Shown } from "./harness/upgrade.js";

interface EventJson {
  action: string;
  outcome: string;
  cause: string | null;
  duration_ms: number | null;
  message: string | null;
}

async function events(acc: AccHome, name: string): Promise<EventJson[]> {
  return JSON.parse(await accOk(acc, ["events", name, "-n", "1000", "--json"])) as EventJson[];
}

async function envOf(acc: AccHome, name: string): Promise<Record<string, string>> {
  return parseEnvFile(await readFile(path.join(acc.home, "instances", name, "env"), "utf8"));
}

/** sha256 of each of root's files of an instance: what an untouched instance keeps. */
async function filesOf(acc: AccHome, name: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const file of ["env", "launch"]) {
    const text = await readFile(path.join(acc.home, "instances", name, file));
    out[file] = createHash("sha256").update(text).digest("hex");
  }
  return out;
}

async function columns(acc: AccHome, name: string, table: string): Promise<string[]> {
  const rows = await queryDatabase<{ column_name: string }>(
    await instanceDatabaseUrl(acc, name),
    "select column_name from information_schema.columns where table_name = $1 order by column_name",
    [table],
  );
  return rows.map((r) => r.column_name);
}

async function page(acc: AccHome, name: string): Promise<string> {
  const answer = await acc.request(`${name}.localhost`);
  assert.equal(answer.status, 200, answer.body);
  return answer.body;
}

test(
  "acc upgrade and acc rollback: guestbook 1.0.0 to 1.1.0, failures rolled back, batches, sleeping instances",
  { timeout: 900_000, skip: requireRoot() },
  async (t: TestContext) => {
    const acc = await bootHome(t, []);
    const guestbook10 = path.join(FIXTURE_MODELS, "guestbook-1.0.0");
    await putModel(acc, "guestbook", guestbook10);
    for (const name of ["up-gb1", "up-gb2"]) {
      await accOk(
        acc,
        ["create", "guestbook", "--name", name, "--param", "admin_email=a@example.com"],
        {
          timeoutMs: 300_000,
        },
      );
      await sign(acc, name, "Ann", `before the upgrade of ${name}`);
    }
    const models = JSON.parse(await accOk(acc, ["models", "--json"])) as {
      name: string;
      instances: Record<string, number>;
    }[];
    assert.deepEqual(models.find((m) => m.name === "guestbook")?.instances, { "1.0.0": 2 });

    await t.test("a failing upgrade command rolls back code, files and database", async () => {
      // Its command migrates the schema and writes into data/, then fails.
      await putModel(acc, "guestbook", path.join(ACC_MODELS, "guestbook"), (toml) =>
        toml
          .replace(/^version = .*$/m, 'version = "1.2.0"')
          .replace(
            'command = "node migrate.js"',
            `command = "node migrate.js && echo half > \\"$DATA_DIR/upgraded\\" && echo 'migration 2 failed: no room' >&2 && exit 1"`,
          ),
      );
      const files = await filesOf(acc, "up-gb2");
      const report = await upgrade(acc, ["up-gb2"], 1);
      const item = report.results[0];
      assert.equal(item?.outcome, "rolled_back", JSON.stringify(report));
      assert.equal(item.from, "1.0.0");
      assert.equal(item.to, "1.2.0");
      assert.match(item.reason ?? "", /upgrade of up-gb2 failed \(exit status 1\)/);
      assert.match(item.log ?? "", /migration 2 failed: no room/);
      assert.ok((item.steps?.rollback ?? 0) > 0, "the rollback is timed");
      // Old version serving, as it was: running, its entry, no likes column, no data/ file.
      const shown = await show(acc, "up-gb2");
      assert.equal(shown.model_version, "1.0.0");
      assert.equal(shown.state, "running");
      assert.deepEqual(
        (await guestbookEntries(acc, "up-gb2")).map((e) => [e.text, e.likes]),
        [["Ann: before the upgrade of up-gb2", undefined]],
      );
      assert.ok(!(await columns(acc, "up-gb2", "entries")).includes("likes"), "schema restored");
      assert.equal(await pathExists(path.join(acc.home, "instances/up-gb2/data/upgraded")), false);
      assert.deepEqual(await filesOf(acc, "up-gb2"), files, "env and launch spec as before");
      const said = await events(acc, "up-gb2");
      const failed = said.find((e) => e.action === "upgrade");
      assert.equal(failed?.outcome, "failed");
      assert.match(failed?.message ?? "", /rolled back to 1\.0\.0: upgrade of up-gb2 failed/);
      assert.match(failed?.message ?? "", /migration 2 failed: no room/);
      assert.ok((failed?.duration_ms ?? 0) > 0);
      const rollback = said.find((e) => e.action === "rollback");
      assert.equal(rollback?.outcome, "ok");
      assert.ok(rollback?.duration_ms !== null);
    });

    await t.test(
      "guestbook 1.0.0 to 1.1.0: dry run, then the schema migrated, entries kept",
      async () => {
        // The bundled guestbook (1.1.0) is the current one again.
        await rm(path.join(acc.home, "models", "guestbook"), { recursive: true });
        const dry = await upgrade(acc, ["--model", "guestbook", "--dry-run"]);
        assert.equal(dry.dry_run, true);
        assert.deepEqual(
          dry.results.map((r) => [r.name, r.outcome, r.from, r.to]),
          [
            ["up-gb1", "would_upgrade", "1.0.0", "1.1.0"],
            ["up-gb2", "would_upgrade", "1.0.0", "1.1.0"],
          ],
        );
        assert.deepEqual(dry.results[0]?.params_added, ["title"]);
        assert.deepEqual(dry.results[0]?.env_changes, ["+PARAM_TITLE", "+TITLE"]);
        assert.equal(
          (await show(acc, "up-gb1")).model_version,
          "1.0.0",
          "a dry run changes nothing",
        );
        const text = await accOk(acc, ["upgrade", "--model", "guestbook", "--dry-run"]);
        assert.match(text, /up-gb1: would upgrade \(guestbook 1\.0\.0 -> 1\.1\.0\)/);
        assert.match(text, /dry run: 2 would be upgraded, 0 skipped/);

        const report = await upgrade(acc, ["--model", "guestbook", "--batch", "2"]);
        assert.deepEqual(report.counts.upgraded, 2, JSON.stringify(report));
        for (const item of report.results) {
          assert.ok((item.steps?.command ?? 0) > 0, `${item.name}: its upgrade command ran`);
          assert.ok((item.steps?.backup ?? 0) > 0, `${item.name}: backed up first`);
          assert.ok(item.backup !== undefined && (await pathExists(item.backup)));
        }
        for (const name of ["up-gb1", "up-gb2"]) {
          const shown = await show(acc, name);
          assert.equal(shown.model_version, "1.1.0");
          assert.equal(shown.state, "running", "running before, running after");
          assert.equal(shown.params.title, "guestbook", "the new parameter got its default");
          assert.ok((await columns(acc, name, "entries")).includes("likes"));
        }
        // The entry from before is there, and the new column is in use.
        const [entry] = await guestbookEntries(acc, "up-gb1");
        assert.deepEqual([entry?.text, entry?.likes], ["Ann: before the upgrade of up-gb1", 0]);
        const liked = await acc.request("up-gb1.localhost", {
          method: "POST",
          path: "/like",
          body: `id=${entry?.id}`,
        });
        assert.equal(liked.status, 303, liked.body);
        assert.equal((await guestbookEntries(acc, "up-gb1"))[0]?.likes, 1);
        const log = await readFile(path.join(acc.home, "logs/up-gb1/app.log"), "utf8");
        assert.match(log, /schema migrated to 1\.1\.0 \(entries\.likes\), 1 entries kept/);
        const upgraded = (await events(acc, "up-gb1")).find((e) => e.action === "upgrade");
        assert.equal(upgraded?.outcome, "ok");
        assert.match(
          upgraded?.message ?? "",
          /guestbook 1\.0\.0 to 1\.1\.0; parameters added: title/,
        );
        assert.ok((upgraded?.duration_ms ?? 0) > 0);
        const listed = JSON.parse(await accOk(acc, ["models", "--json"])) as {
          name: string;
          instances: Record<string, number>;
        }[];
        assert.deepEqual(listed.find((m) => m.name === "guestbook")?.instances, { "1.1.0": 2 });
        assert.match(await accOk(acc, ["models"]), /guestbook\s+1\.1\.0\s+bundled\s+2 on 1\.1\.0/);
        // Upgraded already: nothing to do.
        const again = await upgrade(acc, ["up-gb1"]);
        assert.deepEqual(
          again.results.map((r) => [r.outcome, r.reason]),
          [["skipped", "already on 1.1.0"]],
        );
      },
    );

    await t.test(
      "acc rollback after a good upgrade: the old version, files and database",
      async () => {
        // acc show says which upgrade a rollback would undo.
        const before = JSON.parse(await accOk(acc, ["show", "up-gb1", "--json"])) as {
          last_upgrade: { from: string; to: string; phase: string } | null;
        };
        assert.deepEqual(
          [before.last_upgrade?.from, before.last_upgrade?.to, before.last_upgrade?.phase],
          ["1.0.0", "1.1.0", "committed"],
        );
        assert.match(
          await accOk(acc, ["show", "up-gb1"]),
          /last upgrade\s+1\.0\.0 to 1\.1\.0 at .* \(acc rollback up-gb1 goes back to 1\.0\.0\)/,
        );
        await sign(acc, "up-gb1", "Bob", "after the upgrade");
        const rolled = JSON.parse(
          await accOk(acc, ["rollback", "up-gb1", "--json"], { timeoutMs: 300_000 }),
        ) as {
          state: string;
          model_version: string;
          rolled_back: { from: string; to: string; backup: string };
        };
        assert.deepEqual(
          [rolled.model_version, rolled.state, rolled.rolled_back.from, rolled.rolled_back.to],
          ["1.0.0", "running", "1.1.0", "1.0.0"],
        );
        assert.ok(
          await pathExists(rolled.rolled_back.backup),
          "what it had since is kept in a backup",
        );
        assert.deepEqual(
          (await guestbookEntries(acc, "up-gb1")).map((e) => [e.text, e.likes]),
          [["Ann: before the upgrade of up-gb1", undefined]],
        );
        assert.ok(!(await columns(acc, "up-gb1", "entries")).includes("likes"));
        assert.equal((await envOf(acc, "up-gb1")).PARAM_TITLE, undefined, "1.0.0's env again");
        const after = JSON.parse(await accOk(acc, ["show", "up-gb1", "--json"])) as {
          last_upgrade: unknown;
        };
        assert.equal(after.last_upgrade, null, "nothing left to roll back");
        const again = await runAcc(acc, ["rollback", "up-gb1"]);
        assert.equal(again.code, 1, again.stderr);
        assert.match(again.stderr, /up-gb1 has no upgrade to roll back/);
        // Its pre-upgrade backup gone: refused, with the reason, and nothing changes.
        const report = await upgrade(acc, ["up-gb1"]);
        assert.equal(report.results[0]?.outcome, "upgraded");
        await rm(report.results[0]?.backup ?? "", { recursive: true });
        const refused = await runAcc(acc, ["rollback", "up-gb1"]);
        assert.equal(refused.code, 1, refused.stderr);
        assert.match(
          refused.stderr,
          /cannot roll up-gb1 back to 1\.0\.0: its pre-upgrade backup .* is gone/,
        );
        assert.equal((await show(acc, "up-gb1")).model_version, "1.1.0");
      },
    );

    await t.test("a health check that never passes rolls back, running or stopped", async () => {
      await accOk(acc, ["create", "hello", "--name", "up-h1", "--param", "greeting=Hey"]);
      await accOk(acc, ["create", "hello", "--name", "up-h2", "--no-start"]);
      // 1.1.0 also renders a config file, which a rollback must take away again.
      await putModel(acc, "hello", path.join(ACC_MODELS, "hello"), (toml) =>
        withVersion(
          "1.1.0",
          '[[templates]]\nsource = "package.json"\ntarget = "extra.json"',
        )(toml)
          .replace('path = "/healthz"', 'path = "/never"')
          .replace('start_timeout = "30s"', 'start_timeout = "3s"')
          .replace('timeout = "30s"', 'timeout = "3s"'),
      );
      const dry = await upgrade(acc, ["up-h1", "--dry-run"]);
      assert.match(
        dry.results[0]?.diff ?? "",
        /^--- config\/extra\.json\n\+\+\+ config\/extra\.json\n@@ -0,0 \+1,\d+ @@\n\+\{/,
      );
      const report = await upgrade(acc, ["up-h1", "up-h2", "--max-failures", "2"], 1);
      for (const item of report.results) {
        assert.equal(item.outcome, "rolled_back", JSON.stringify(report));
        assert.match(item.reason ?? "", new RegExp(`${item.name} failed to start`));
        assert.equal(
          await pathExists(path.join(acc.home, "instances", item.name, "config/extra.json")),
          false,
          "the new version's config file went with it",
        );
      }
      const running = await show(acc, "up-h1");
      assert.deepEqual([running.model_version, running.state], ["1.0.0", "running"]);
      assert.match(await page(acc, "up-h1"), /Hey/);
      const said = await events(acc, "up-h1");
      assert.match(said.find((e) => e.action === "upgrade")?.message ?? "", /failed to start/);
      // The stopped one is stopped again, with no error of its own: the failure was the upgrade's.
      const stopped = (await show(acc, "up-h2")) as Shown & { last_error: string | null };
      assert.deepEqual(
        [stopped.model_version, stopped.state, stopped.last_error],
        ["1.0.0", "stopped", null],
      );
    });

    await t.test("a sleeping instance is upgraded with --no-verify without starting", async () => {
      await accOk(acc, ["create", "hello", "--name", "up-s1", "--no-start"]);
      await putModel(acc, "hello", path.join(ACC_MODELS, "hello"), (toml) =>
        withVersion("1.2.0")(toml).replace(
          'GREETING = "{{ params.greeting }}"',
          'GREETING = "Howdy, {{ params.greeting }}"',
        ),
      );
      const report = await upgrade(acc, ["up-s1", "--no-verify"]);
      assert.equal(report.results[0]?.outcome, "upgraded", JSON.stringify(report));
      assert.equal(report.results[0]?.steps?.verify, undefined, "no verification start");
      const shown = await show(acc, "up-s1");
      assert.deepEqual([shown.model_version, shown.state], ["1.2.0", "stopped"]);
      assert.equal(await startCount(acc, "up-s1"), 0, "never started");
      // Its next wake runs the new version.
      assert.match(await page(acc, "up-s1"), /Howdy, Hello/);
      // Without --no-verify a stopped one is started and stopped again, and stays asleep.
      await accOk(acc, ["create", "hello", "--name", "up-s2", "--no-start"]);
      await putModel(acc, "hello", path.join(ACC_MODELS, "hello"), withVersion("1.2.1"));
      const verified = await upgrade(acc, ["up-s2"]);
      assert.ok((verified.results[0]?.steps?.verify ?? 0) > 0);
      assert.equal((await show(acc, "up-s2")).state, "stopped");
      assert.equal(await startCount(acc, "up-s2"), 1);
    });

    await t.test("a batch of 10 with one failure stops after --max-failures 1", async () => {
      const names = Array.from({ length: 10 }, (_, i) => `up-b${i}`);
      for (const name of names) await accOk(acc, ["create", "hello", "--name", name, "--no-start"]);
      // Fails for up-b3 only.
      await putModel(
        acc,
        "hello",
        path.join(ACC_MODELS, "hello"),
        withVersion("1.3.0", '[upgrade]\ncommand = "test \\"$ACC_INSTANCE\\" != up-b3"'),
      );
      const before = new Map<string, Record<string, string>>();
      for (const name of names) before.set(name, await filesOf(acc, name));
      const report = await upgrade(acc, [...names, "--no-verify", "--max-failures", "1"], 1);
      assert.deepEqual(
        report.results.map((r) => `${r.name}:${r.outcome}`),
        [
          "up-b0:upgraded",
          "up-b1:upgraded",
          "up-b2:upgraded",
          "up-b3:rolled_back",
          ...names.slice(4).map((n) => `${n}:not_started`),
        ],
      );
      assert.match(report.stopped ?? "", /1 instance rolled back \(--max-failures 1\)/);
      for (const name of names.slice(3)) {
        assert.equal((await show(acc, name)).model_version, "1.2.1", `${name} untouched`);
        assert.deepEqual(
          await filesOf(acc, name),
          before.get(name),
          `${name}'s files as they were`,
        );
        assert.equal(
          await pathExists(path.join(acc.home, "instances", name, "upgrade.json")),
          false,
        );
      }
      assert.equal((await show(acc, "up-b0")).model_version, "1.3.0");
      const text = await runAcc(acc, ["upgrade", "up-b3", "up-b4", "--no-verify"]);
      assert.equal(text.code, 1, text.stdout);
      assert.match(text.stdout, /up-b3: ROLLED BACK \(hello 1\.2\.1 -> 1\.3\.0\)/);
      assert.match(text.stdout, /up-b4: not started/);
      assert.match(text.stdout, /0 upgraded, 1 rolled back, 0 skipped, 1 not started/);
    });

    await t.test(
      "parameters: a new required one refuses unless --param; dropped ones listed",
      async () => {
        // 1.4.0 drops greeting and adds a required owner without a default, and a password.
        await putModel(acc, "hello", path.join(ACC_MODELS, "hello"), (toml) =>
          withVersion(
            "1.4.0",
            '[params.owner]\ntype = "email"\nrequired = true\n\n[params.key]\ntype = "password"\n',
          )(toml)
            .replace(/\[params\.greeting\][^[]*/, "")
            .replace(
              'GREETING = "{{ params.greeting }}"',
              'GREETING = "Owned by {{ params.owner }}"',
            ),
        );
        const refused = await upgrade(acc, ["up-b5"]);
        assert.equal(refused.results[0]?.outcome, "skipped");
        assert.match(
          refused.results[0]?.reason ?? "",
          /missing required parameter owner for model hello \(give --param owner=VALUE\)/,
        );
        assert.equal((await show(acc, "up-b5")).model_version, "1.2.1");
        const report = await upgrade(acc, ["up-b5", "--param", "owner=o@example.com"]);
        const item = report.results[0];
        assert.equal(item?.outcome, "upgraded", JSON.stringify(report));
        assert.deepEqual(item.params_added, ["owner", "key"]);
        assert.deepEqual(item.params_dropped, ["greeting"]);
        assert.deepEqual(item.params_generated, ["key"]);
        const shown = await show(acc, "up-b5");
        assert.deepEqual(shown.params, { owner: "o@example.com" });
        const env = await envOf(acc, "up-b5");
        assert.equal(env.PARAM_GREETING, undefined);
        assert.equal(env.PARAM_KEY?.length, 24, "a generated secret, in the env file only");
        const said = (await events(acc, "up-b5")).find((e) => e.action === "upgrade");
        assert.match(
          said?.message ?? "",
          /parameters added: owner, key; parameters dropped: greeting/,
        );
        assert.match(await page(acc, "up-b5"), /Owned by o@example\.com/);
      },
    );

    await t.test("bad input: exit 2, one line, nothing changes", async () => {
      for (const [args, said] of [
        [["up-b4", "--model", "hello"], /name the instances to upgrade or give a model, not both/],
        [[], /name the instances to upgrade or give a model/],
        [["up-b4", "--batch", "0"], /invalid --batch "0"/],
        [["up-b4", "--batch", "x"], /invalid --batch "x"/],
        [["up-b4", "--param", "nope=1"], /unknown parameter "nope"/],
        [["UP"], /invalid instance name/],
        [["--model", "../x"], /invalid model name/],
      ] as const) {
        const run = await runAcc(acc, ["upgrade", ...args]);
        assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
        assert.match(run.stderr, said);
        assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
      }
      assert.equal((await show(acc, "up-b4")).model_version, "1.2.1");
    });
  },
);
