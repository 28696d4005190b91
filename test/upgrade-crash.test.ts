// An upgrade is all or nothing: `acc upgrade` killed (-9) at 20 points, then `acc doctor
// --repair` (or the instance's next start), leaves the instance wholly on its old version or
// wholly on its new one: store, env, launch spec, supervisord program, data/ and database agree.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { parseEnvFile } from "../src/core/instance-env.js";
import { stopAccServer, type AccHome } from "./harness/acc.js";
import {
  accOk,
  bootHome,
  FIXTURE_MODELS,
  instanceIdentity,
  killedAcc,
  nodeAs,
  requireRoot,
  runAcc,
  type Identity,
} from "./harness/attacker.js";
import { sign } from "./harness/guestbook.js";
import { instanceDatabaseUrl, queryDatabase } from "./harness/postgres.js";
import { ACC_MODELS, putModel, show } from "./harness/upgrade.js";

const KILLS = 20;
const NAME = "up-k1";
const NEW = "1.1.0-k";

/** Each part of the instance that an upgrade changes, as old or new. */
async function parts(acc: AccHome, who: Identity): Promise<Record<string, "old" | "new">> {
  const env = parseEnvFile(await readFile(path.join(acc.home, "instances", NAME, "env"), "utf8"));
  const launch = await readFile(path.join(acc.home, "instances", NAME, "launch"), "utf8");
  const program = await readFile(
    path.join(acc.home, "supervisor", "programs", `${NAME}.conf`),
    "utf8",
  );
  const marker = await nodeAs<string | null>(
    who,
    `try { return await fs.readFile(path.join(input, "version"), "utf8"); } catch { return null; }`,
    path.join(acc.home, "instances", NAME, "data"),
  );
  const likes = await queryDatabase<{ n: number }>(
    await instanceDatabaseUrl(acc, NAME),
    "select count(*)::int as n from information_schema.columns where table_name = 'entries' and column_name = 'likes'",
  );
  const kind = (isNew: boolean): "old" | "new" => (isNew ? "new" : "old");
  return {
    store: kind((await show(acc, NAME)).model_version === NEW),
    env: kind(env.PARAM_TITLE !== undefined),
    launch: kind(launch.includes(`/code/guestbook-${NEW}-`)),
    program: kind(program.includes(`/code/guestbook-${NEW}-`)),
    data: kind(marker !== null),
    database: kind(likes[0]?.n === 1),
  };
}

test(
  `acc upgrade killed at ${KILLS} points, then doctor: wholly old or wholly new`,
  { timeout: 900_000, skip: requireRoot() },
  async (t) => {
    const acc = await bootHome(t, []);
    // The CLI does the work itself, so that killing it kills the upgrade.
    await stopAccServer(acc);
    await putModel(acc, "guestbook", path.join(FIXTURE_MODELS, "guestbook-1.0.0"));
    await accOk(
      acc,
      ["create", "guestbook", "--name", NAME, "--param", "admin_email=a@example.com"],
      { timeoutMs: 300_000 },
    );
    await sign(acc, NAME, "Ann", "before");
    await accOk(acc, ["stop", NAME]);
    const who = await instanceIdentity(NAME);
    // The new version migrates the schema and marks data/.
    await putModel(acc, "guestbook", path.join(ACC_MODELS, "guestbook"), (toml) =>
      toml
        .replace(/^version = .*$/m, `version = "${NEW}"`)
        .replace(
          'command = "node migrate.js"',
          `command = "node migrate.js && echo ${NEW} > \\"$DATA_DIR/version\\""`,
        ),
    );
    // An instance of the new version keeps its code folder (doctor --repair removes unused ones):
    // each upgrade below then takes as long as the one timed, and the kills land all over it.
    await accOk(
      acc,
      [
        "create",
        "guestbook",
        "--name",
        "up-k2",
        "--no-start",
        "--param",
        "admin_email=a@example.com",
      ],
      { timeoutMs: 300_000 },
    );
    const allOld = {
      store: "old",
      env: "old",
      launch: "old",
      program: "old",
      data: "old",
      database: "old",
    };
    const allNew = Object.fromEntries(Object.keys(allOld).map((k) => [k, "new"]));
    assert.deepEqual(await parts(acc, who), allOld);

    // How long a whole upgrade takes (its code folder made already), to spread the kills.
    await accOk(acc, ["upgrade", NAME], { timeoutMs: 300_000 });
    await accOk(acc, ["rollback", NAME], { timeoutMs: 300_000 });
    const started = Date.now();
    await accOk(acc, ["upgrade", NAME], { timeoutMs: 300_000 });
    const duration = Date.now() - started;
    t.diagnostic(`a whole acc upgrade takes ${duration} ms`);
    assert.deepEqual(await parts(acc, who), allNew);
    await accOk(acc, ["rollback", NAME], { timeoutMs: 300_000 });
    assert.deepEqual(await parts(acc, who), allOld);

    const outcomes: string[] = [];
    for (let i = 0; i < KILLS; i++) {
      const delay = Math.round((duration * (i + 0.5)) / KILLS);
      const group = i % 2 === 0;
      const { how, cleanup } = await killedAcc(acc, ["upgrade", NAME], delay, group);
      t.after(cleanup);
      // What the kill left: the journal's phase (none: killed before it was written).
      const journal = await readFile(path.join(acc.home, "instances", NAME, "upgrade.json"), "utf8")
        .then((text) => (JSON.parse(text) as { phase: string }).phase)
        .catch(() => "none");
      // Every fifth time, no doctor: the instance's next start settles the upgrade itself.
      const byStart = i % 5 === 4;
      const repair = byStart
        ? await runAcc(acc, ["start", NAME], { timeoutMs: 120_000 })
        : await runAcc(acc, ["doctor", "--repair"], { timeoutMs: 120_000 });
      const said = repair.stdout + repair.stderr;
      assert.doesNotMatch(said, /this is a bug/, said);
      const found = await parts(acc, who);
      const label = `killed at ${delay} ms (${how}${group ? ", with its children" : ""})`;
      assert.ok(
        Object.values(found).every((v) => v === found.store),
        `${label}: a mix ${JSON.stringify(found)}\n${said}`,
      );
      if (/its upgrade from .* was interrupted/.test(said)) assert.equal(found.store, "old", said);
      const shown = await show(acc, NAME);
      assert.ok(["stopped", "running"].includes(shown.state), `${label}: ${shown.state}`);
      // Nothing is left for doctor to say about it (after a start, which settles the upgrade
      // only, a backup the kill cut short is left for doctor), and the entry from before is there.
      const check = await runAcc(acc, ["doctor"], { timeoutMs: 120_000 });
      const left = check.stdout + check.stderr;
      assert.doesNotMatch(left, byStart ? /upgrade|restore/ : /upgrade|restore|up-k1:/, left);
      if (byStart) await accOk(acc, ["doctor", "--repair"], { timeoutMs: 120_000 });
      const rows = await queryDatabase<{ author: string }>(
        await instanceDatabaseUrl(acc, NAME),
        "select author from entries",
      );
      assert.deepEqual(
        rows.map((r) => r.author),
        ["Ann"],
      );
      outcomes.push(
        `${delay}ms${group ? "" : "(pid)"}:${journal}:${found.store}${/interrupted/.test(said) ? "*" : ""}`,
      );
      if (byStart) {
        assert.equal(repair.code, 0, said);
        await accOk(acc, ["stop", NAME], { timeoutMs: 60_000 });
      }
      if (found.store === "new") await accOk(acc, ["rollback", NAME], { timeoutMs: 300_000 });
      assert.deepEqual(await parts(acc, who), allOld, `${label}: reset to the old version`);
    }
    t.diagnostic(
      `outcomes (delay:journal left:version, * explained as interrupted): ${outcomes.join(" ")}`,
    );
    // Kills landed inside the upgrade: some after its journal said "changing" (then doctor
    // explained and rolled back), some before it.
    assert.ok(
      outcomes.some((o) => o.includes(":changing:old*")),
      outcomes.join(" "),
    );
    assert.ok(
      outcomes.some((o) => o.includes(":none:old")),
      outcomes.join(" "),
    );
  },
);
