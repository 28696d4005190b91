// What an instance's own process sees from inside whatever acc runs it in (the sx-prober
// model reports it), and what its log does to whoever reads it with acc logs.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import {
  accOk,
  bootHome,
  instanceIdentity,
  marker,
  requireRoot,
  runAcc,
} from "../harness/attacker.js";

const skip = requireRoot();

interface Attempt {
  ok: boolean;
  code?: string;
  value?: unknown;
}

interface Probe {
  uid: number;
  gid: number;
  noNewPrivs: string | null;
  capEff: string | null;
  capPrm: string | null;
  pids: number;
  inheritedFds: string[];
  foreignUids: number[];
  otherInstancePids: number;
  listInstances: Attempt;
  readOtherEnv: Attempt;
  listOtherData: Attempt;
  writeUsr: Attempt;
  writeEtc: Attempt;
  writeCode: Attempt;
  writeOwnFolder: Attempt;
  writeOwnConfig: Attempt;
  writeOwnData: Attempt;
  writeTmp: Attempt;
}

test("security: the instance's sandbox and its log", { skip, timeout: 300_000 }, async (t) => {
  const acc = await bootHome(t, ["sx-prober"]);
  await accOk(acc, ["create", "sx-prober", "--name", "sxp1", "--no-start"]);
  await accOk(acc, ["create", "sx-prober", "--name", "sxp2", "--no-start"]);
  const me = await instanceIdentity("sxp1");
  const other = await instanceIdentity("sxp2");
  // The other instance runs, so it has processes the prober could see.
  const woken = await acc.request("sxp2.localhost", { timeoutMs: 20_000 });
  assert.equal(woken.status, 200, woken.body);

  const tmpName = `${marker("TMP")}.txt`;
  t.after(() => rm(path.join(os.tmpdir(), tmpName), { force: true }));
  const query = new URLSearchParams({
    other: path.join(acc.home, "instances/sxp2"),
    otherUid: String(other.uid),
    instances: path.join(acc.home, "instances"),
    tmp: tmpName,
  });
  const answer = await acc.request("sxp1.localhost", {
    path: `/probe?${query.toString()}`,
    timeoutMs: 20_000,
  });
  assert.equal(answer.status, 200, answer.body);
  const probe = JSON.parse(answer.body) as Probe;
  t.diagnostic(`probe of sxp1 (host uid ${me.uid}): ${answer.body}`);

  const check = (name: string, fn: () => void): Promise<void> => t.test(name, fn);

  await check("9. it does not run as root", () => assert.notEqual(probe.uid, 0));
  await check("9. no_new_privs is set", () => assert.equal(probe.noNewPrivs, "1"));
  // supervisord closes only up to its minfds: acc-launch closes the rest (its log files, other
  // instances' pipes, its socket), as root, before the drop.
  await check("9. it inherits no descriptor but stdin, stdout and stderr", () =>
    assert.deepEqual(probe.inheritedFds, []),
  );
  await check("9. it has no capabilities", () => {
    assert.equal(BigInt(`0x${probe.capEff ?? "1"}`), 0n, `CapEff ${probe.capEff}`);
    assert.equal(BigInt(`0x${probe.capPrm ?? "1"}`), 0n, `CapPrm ${probe.capPrm}`);
  });
  await check("9. it sees no process of another instance", () =>
    assert.equal(probe.otherInstancePids, 0),
  );
  await check("9. it sees only its own processes (a PID namespace)", () => {
    assert.deepEqual(
      probe.foreignUids,
      [],
      `it sees processes of uids ${probe.foreignUids.join(", ")}`,
    );
    assert.ok(probe.pids < 20, `it sees ${probe.pids} processes`);
  });
  await check("9. it cannot list the other instances", () => {
    // Either it cannot list the folder, or it sees its own folder alone (the sandbox's view).
    const seen = probe.listInstances.ok ? (probe.listInstances.value as string[]) : [];
    assert.ok(!seen.includes("sxp2"), `it sees ${seen.join(", ")}`);
  });
  await check("9. it cannot read another instance's env", () =>
    assert.equal(probe.readOtherEnv.ok, false),
  );
  await check("9. it cannot list another instance's data", () =>
    assert.equal(probe.listOtherData.ok, false),
  );
  await check("9. /usr and /etc are read-only", () => {
    assert.equal(probe.writeUsr.ok, false);
    assert.equal(probe.writeEtc.ok, false);
  });
  await check("9. its model's code is read-only", () => assert.equal(probe.writeCode.ok, false));
  await check("9. its own folder is read-only outside data/", () => {
    assert.equal(probe.writeOwnFolder.ok, false, "it wrote in its instance folder");
    assert.equal(probe.writeOwnConfig.ok, false, "it wrote in its config folder");
  });
  await check("9. it can write its data/", () =>
    assert.equal(probe.writeOwnData.ok, true, JSON.stringify(probe.writeOwnData)),
  );
  await check("9. its /tmp is private", () => {
    assert.equal(probe.writeTmp.ok, true, `it could not write in /tmp: ${probe.writeTmp.code}`);
    assert.ok(
      !existsSync(path.join(os.tmpdir(), tmpName)),
      "a file it wrote in /tmp appeared in the host's /tmp",
    );
  });

  await t.test("variant: acc logs passes no raw escape sequence to the reader", async () => {
    const logs = await runAcc(acc, ["logs", "sxp1"]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /sx-prober starting/, "the log line is not there");
    assert.ok(!logs.stdout.includes("\x1b"), `raw ESC in: ${JSON.stringify(logs.stdout)}`);
    assert.ok(!logs.stdout.includes("\x07"), "raw BEL in the output");
  });
});
