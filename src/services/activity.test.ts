import assert from "node:assert/strict";
import {
  appendFile,
  mkdir,
  mkdtemp,
  readFile,
  rename,
  rm,
  truncate,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { homePaths, type HomePaths } from "../core/paths.js";
import { openSqliteStore } from "../store/open.js";
import {
  accessLogPositionFile,
  parseAccessLines,
  loopbackConnectionPorts,
  readAccessLogActivity,
  recordActivity,
  scanAccessLog,
} from "./activity.js";

// Lines as nginx writes them with `log_format acc '$msec $acc_instance $status ...'`.
const line = (
  msec: string,
  instance: string,
  rest = '200 0.001 127.0.0.1 "GET / HTTP/1.1" 12',
): string => `${msec} ${instance} ${rest}\n`;

test("parseAccessLines: latest time per instance, in ms", () => {
  const text =
    line("1764150000.100", "acme") +
    line("1764150005.250", "acme") +
    line("1764150003.000", "acme") +
    line("1764150001.999", "shop-2");
  assert.deepEqual(
    [...parseAccessLines(text)],
    [
      ["acme", 1764150005250],
      ["shop-2", 1764150001999],
    ],
  );
});

test("parseAccessLines: skips unknown hosts, garbage and bad names; no trailing newline needed", () => {
  const text =
    '1764150000.100  404 0.000 127.0.0.1 "GET / HTTP/1.1" 10\n' + // unknown host: empty instance
    '1764150000.100 - 404 0.000 127.0.0.1 "GET / HTTP/1.1" 10\n' +
    "garbage\n" +
    "\n" +
    "notatime acme 200\n" +
    "1764150000.100 Bad_Name 200\n" +
    "1764150000.100 -lead 200\n" +
    `1764150000.100 ${"a".repeat(41)} 200\n` +
    "1764150009.000 acme";
  assert.deepEqual([...parseAccessLines(text)], [["acme", 1764150009000]]);
  assert.equal(parseAccessLines("").size, 0);
});

test("parseAccessLines: adds to a given map, keeping the later time", () => {
  const into = new Map([
    ["acme", 1764150010000],
    ["old", 1],
  ]);
  parseAccessLines(line("1764150005.000", "acme") + line("1764150005.000", "old"), into);
  assert.equal(into.get("acme"), 1764150010000);
  assert.equal(into.get("old"), 1764150005000);
});

// From a real machine: header, a listener (0A), connections in both directions on 127.0.0.1.
const PROC_NET_TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:4E21 0100007F:D431 01 00000000:00000000 00:00000000 00000000   998        0 22346 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:D431 0100007F:4E21 01 00000000:00000000 00:00000000 00000000     0        0 22347 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:4E22 0100007F:D432 06 00000000:00000000 03:00000F1E 00000000     0        0 0 3 0000000000000000
   4: 0F02000A:0016 0102000A:C350 01 00000000:00000000 02:0004A0E6 00000000     0        0 1234 2 0000000000000000 20 4 30 10 -1
`;

const PROC_NET_TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:4E23 0000000000000000FFFF00000100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 20 4 30 10 -1
   1: 00000000000000000000000001000000:4E24 00000000000000000000000001000000:C001 01 00000000:00000000 00:00000000 00000000     0        0 5556 1 0000000000000000 20 4 30 10 -1
   2: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5557 1 0000000000000000 100 0 0 10 0
`;

test("loopbackConnectionPorts: local ports of ESTABLISHED connections on 127.0.0.1 (hex ports)", () => {
  // 4E21 = 20001 (server side of a connection to an instance); D431 = 54321 (the client side).
  // Listeners (0A), TIME_WAIT (06) and other addresses do not count.
  assert.deepEqual([...loopbackConnectionPorts(PROC_NET_TCP)].sort(), [20001, 54321]);
});

test("loopbackConnectionPorts: IPv4-mapped 127.0.0.1 in tcp6 counts, ::1 does not", () => {
  assert.deepEqual([...loopbackConnectionPorts(PROC_NET_TCP6)], [20003]);
  assert.equal(loopbackConnectionPorts("").size, 0);
  assert.equal(loopbackConnectionPorts("garbage\n  1: x y 01\n").size, 0);
});

async function tempHome(t: TestContext): Promise<HomePaths> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "acc-activity-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const paths = homePaths(dir);
  await mkdir(paths.nginxLogs, { recursive: true });
  return paths;
}

test("scanAccessLog: missing file, then reads only new whole lines", async (t) => {
  const paths = await tempHome(t);
  const ctx = { paths };
  const log = path.join(paths.nginxLogs, "access.log");
  assert.equal((await readAccessLogActivity(ctx)).size, 0, "no log yet: nothing, no error");

  await writeFile(log, line("1764150000.000", "acme") + "1764150001.000 sh");
  const first = await readAccessLogActivity(ctx);
  assert.deepEqual(
    [...first].map(([n, d]) => [n, d.getTime()]),
    [["acme", 1764150000000]],
  );
  const saved = JSON.parse(await readFile(accessLogPositionFile(ctx), "utf8")) as {
    offset: number;
  };
  assert.equal(
    saved.offset,
    line("1764150000.000", "acme").length,
    "the partial line is not consumed",
  );

  await appendFile(log, "op\n" + line("1764150002.000", "acme"));
  const second = await readAccessLogActivity(ctx);
  assert.deepEqual(
    [...second].map(([n, d]) => [n, d.getTime()]),
    [
      ["shop", 1764150001000],
      ["acme", 1764150002000],
    ],
    "the line finished since is read whole",
  );
  assert.equal((await readAccessLogActivity(ctx)).size, 0, "nothing new: nothing seen");
});

test("scanAccessLog: truncation and rotation start again from 0; a rotated file is finished", async (t) => {
  const paths = await tempHome(t);
  const ctx = { paths };
  const log = path.join(paths.nginxLogs, "access.log");
  await writeFile(log, line("1764150000.000", "a") + line("1764150001.000", "b"));
  await readAccessLogActivity(ctx);

  await truncate(log, 0);
  await writeFile(log, line("1764150002.000", "c"));
  assert.deepEqual([...(await readAccessLogActivity(ctx)).keys()], ["c"], "truncated: read from 0");

  // logrotate: the old file moves to access.log.1 with lines not read yet; a new file starts.
  await appendFile(log, line("1764150003.000", "d"));
  await rename(log, `${log}.1`);
  await writeFile(log, line("1764150004.000", "e"));
  assert.deepEqual([...(await readAccessLogActivity(ctx)).keys()].sort(), ["d", "e"]);
  assert.equal((await readAccessLogActivity(ctx)).size, 0);
});

test("scanAccessLog: a big backlog is read in chunks, whole lines only", async (t) => {
  const paths = await tempHome(t);
  const log = path.join(paths.nginxLogs, "access.log");
  const lines: string[] = [];
  // ~4 MB: several read chunks, so lines cross chunk boundaries.
  for (let i = 0; i < 50_000; i++)
    lines.push(line(`1764150000.${String(i % 1000).padStart(3, "0")}`, `i${i % 500}`));
  lines.push(line("1764159999.000", "i7"));
  await writeFile(log, lines.join("") + "1764160000.000 i8 200");
  const scan = await scanAccessLog({ paths });
  assert.equal(scan.seen.size, 500);
  assert.equal(scan.seen.get("i7"), 1764159999000);
  assert.equal(scan.seen.get("i8"), 1764150000508, "the unfinished last line is left for later");
  assert.equal(scan.position.offset, lines.join("").length);
});

test("recordActivity: one write per instance whose activity moved forward", async (t) => {
  const paths = await tempHome(t);
  const store = openSqliteStore(paths.store);
  t.after(() => store.close());
  await store.migrate();
  const now = "2026-11-26T10:00:00.000Z";
  for (const name of ["a", "b", "c"]) {
    await store.insertInstance(
      {
        name,
        model: "hello",
        modelVersion: "1.0.0",
        modelHash: "abc",
        hosts: [],
        params: {},
        idleTimeout: undefined,
        portRange: { min: 20000, max: 20100 },
      },
      now,
    );
  }
  await store.updateInstance("b", { lastActivityAt: "2026-11-26T10:05:00.000Z" }, now);
  const ctx = { store, now: () => new Date(now) };
  const updated = await recordActivity(
    ctx,
    new Map([
      ["a", new Date("2026-11-26T10:01:00.000Z")],
      ["b", new Date("2026-11-26T10:04:00.000Z")], // older than stored: kept as is
      ["gone", new Date("2026-11-26T10:01:00.000Z")], // destroyed since: ignored
    ]),
  );
  assert.deepEqual([...updated], [["a", "2026-11-26T10:01:00.000Z"]]);
  const rows = new Map((await store.listInstances()).map((i) => [i.name, i.lastActivityAt]));
  assert.equal(rows.get("a"), "2026-11-26T10:01:00.000Z");
  assert.equal(rows.get("b"), "2026-11-26T10:05:00.000Z");
  assert.equal(rows.get("c"), null);
});
