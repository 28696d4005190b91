import assert from "node:assert/strict";
import { test } from "node:test";
import {
  commandFromCmdline,
  decodeProcAddress,
  describePortHolders,
  formatEndpoint,
  isLoopbackAddress,
  parseProcNetTcp,
  safeCommandLine,
  socketInodeOfLink,
  TCP_ESTABLISHED,
  TCP_LISTEN,
  type PortListener,
} from "./listeners.js";
import { parentFromStat } from "../lib/processes.js";

// Copied from a real x86_64 machine (trailing spaces and all): listeners on 127.0.0.1,
// 0.0.0.0, 127.1.2.3 and 192.0.2.2, and both ends of a connection on 127.0.0.1.
const PROC_NET_TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 176 1 00000000d670c720 100 0 0 10 0                       
   1: 0100007F:8AF3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 84103 1 00000000fb424b0a 100 0 0 10 0                     
   2: 00000000:9EC9 00000000:0000 0A 00000000:00000000 00:00000000 00000000 100005        0 84104 1 00000000072135e9 100 0 0 10 0                     
   3: 0302017F:8FE9 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 84107 1 00000000c062cb11 100 0 0 10 0                     
   4: 0100007F:8AF3 0100007F:DE5A 01 00000000:00000000 00:00000000 00000000     0        0 84110 1 000000002496d421 20 0 0 10 -1                     
   5: 0100007F:DE5A 0100007F:8AF3 01 00000000:00000000 00:00000000 00000000     0        0 84109 2 00000000be42878a 20 0 0 10 -1                     
   6: 020200C0:89C3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 83646 1 00000000c512b160 100 0 0 10 0                     
`;

// The same machine's tcp6: ::, ::1, ::ffff:127.0.0.1 and fd00::2.
const PROC_NET_TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:8859 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 84105 1 00000000a44523ff 100 0 0 10 0
   1: 00000000000000000000000001000000:B3AD 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 84106 1 000000003ca379f9 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:AFB1 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 84108 1 000000008a454821 100 0 0 10 0
   3: 000000FD000000000000000002000000:8FD5 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 83647 1 000000007f671de4 100 0 0 10 0
`;

test("parseProcNetTcp: IPv4 sockets decoded, every state, header skipped", () => {
  const sockets = parseProcNetTcp(PROC_NET_TCP);
  assert.equal(sockets.length, 7);
  assert.deepEqual(sockets[0], {
    family: "ipv4",
    address: "0.0.0.0",
    port: 2024,
    state: TCP_LISTEN,
    uid: 0,
    inode: 176,
  });
  assert.deepEqual(
    sockets.map((s) => [s.address, s.port, s.state, s.uid, s.inode]),
    [
      ["0.0.0.0", 2024, TCP_LISTEN, 0, 176],
      ["127.0.0.1", 35571, TCP_LISTEN, 0, 84103],
      ["0.0.0.0", 40649, TCP_LISTEN, 100005, 84104],
      ["127.1.2.3", 36841, TCP_LISTEN, 0, 84107],
      ["127.0.0.1", 35571, TCP_ESTABLISHED, 0, 84110],
      ["127.0.0.1", 56922, TCP_ESTABLISHED, 0, 84109],
      ["192.0.2.2", 35267, TCP_LISTEN, 0, 83646],
    ],
  );
});

test("parseProcNetTcp: a state filter keeps only that state", () => {
  assert.deepEqual(
    parseProcNetTcp(PROC_NET_TCP, { state: TCP_ESTABLISHED }).map((s) => s.inode),
    [84110, 84109],
  );
  assert.equal(parseProcNetTcp(PROC_NET_TCP, { state: TCP_LISTEN }).length, 5);
});

test("parseProcNetTcp: IPv6, loopback and IPv4-mapped addresses", () => {
  assert.deepEqual(
    parseProcNetTcp(PROC_NET_TCP6).map((s) => [s.family, s.address, s.port, s.inode]),
    [
      ["ipv6", "::", 34905, 84105],
      ["ipv6", "::1", 45997, 84106],
      ["ipv6", "::ffff:127.0.0.1", 44977, 84108],
      ["ipv6", "fd00::2", 36821, 83647],
    ],
  );
});

test("parseProcNetTcp: garbage, short lines and bad fields are skipped", () => {
  assert.deepEqual(parseProcNetTcp(""), []);
  const garbage = [
    "garbage",
    "  1: x y 01",
    // Not hex, wrong address length, state of 3 digits, uid or inode not a number:
    "   0: 0100007G:8AF3 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1",
    "   0: 0100007F0:8AF3 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1",
    "   0: 0100007F:8AF3 00000000:0000 0AA 00000000:00000000 00:00000000 00000000 0 0 1 1",
    "   0: 0100007F:8AF3 00000000:0000 0A 00000000:00000000 00:00000000 00000000 -1 0 1 1",
    "   0: 0100007F:8AF3 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 x 1",
    "   0: 0100007F:8AF33 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1",
    "   0: 0100007F:8AF3",
    "\u0000\u0001\u00ff",
  ].join("\n");
  assert.deepEqual(parseProcNetTcp(garbage), []);
  // A good line among them is still read; Windows line ends too.
  const good = PROC_NET_TCP.split("\n")[2] ?? "";
  assert.deepEqual(
    parseProcNetTcp(`${garbage}\r\n${good}\r\n`).map((s) => s.address),
    ["127.0.0.1"],
  );
});

test("decodeProcAddress: each 32-bit word in host order, little- or big-endian", () => {
  assert.deepEqual(decodeProcAddress("0100007F"), { family: "ipv4", address: "127.0.0.1" });
  assert.deepEqual(decodeProcAddress("7F000001", false), {
    family: "ipv4",
    address: "127.0.0.1",
  });
  assert.equal(decodeProcAddress("020200C0")?.address, "192.0.2.2");
  assert.equal(decodeProcAddress("00000000000000000000000001000000")?.address, "::1");
  assert.equal(decodeProcAddress("00000000000000000000000000000001", false)?.address, "::1");
  assert.equal(decodeProcAddress("0000000000000000FFFF00000100007F")?.address, "::ffff:127.0.0.1");
  assert.equal(
    decodeProcAddress("00000000000000000000FFFF7F000001", false)?.address,
    "::ffff:127.0.0.1",
  );
  // 2001:db8::1:0:0:1 as the kernel writes it on little-endian: of two equal zero runs, the
  // first is cut.
  assert.equal(decodeProcAddress("B80D0120000000000000010001000000")?.address, "2001:db8::1:0:0:1");
  // The longer run is cut, not the first; a single zero group is never cut.
  assert.equal(decodeProcAddress("B80D0120010000000000000001000000")?.address, "2001:db8:0:1::1");
  assert.equal(
    decodeProcAddress("B80D0120010000000100010001000100")?.address,
    "2001:db8:0:1:1:1:1:1",
  );
  assert.equal(decodeProcAddress("0000000000000000000000000000000")?.address, undefined);
  assert.equal(decodeProcAddress("zz00007F"), undefined);
});

test("isLoopbackAddress: 127.0.0.0/8, ::1 and IPv4-mapped 127.x only", () => {
  for (const address of ["127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "::ffff:127.0.0.1"]) {
    assert.equal(isLoopbackAddress(address), true, address);
  }
  for (const address of [
    "0.0.0.0",
    "::",
    "192.0.2.2",
    "10.0.0.1",
    "128.0.0.1",
    "126.255.255.255",
    "fd00::2",
    "::ffff:10.0.0.1",
    "::ffff:0.0.0.0",
    "::127.0.0.1",
    "",
    "garbage",
  ]) {
    assert.equal(isLoopbackAddress(address), false, address);
  }
});

test("formatEndpoint: IPv6 in brackets", () => {
  assert.equal(formatEndpoint({ address: "0.0.0.0", port: 20001 }), "0.0.0.0:20001");
  assert.equal(formatEndpoint({ address: "::", port: 20001 }), "[::]:20001");
  assert.equal(formatEndpoint({ address: "::ffff:127.0.0.1", port: 80 }), "[::ffff:127.0.0.1]:80");
});

test("safeCommandLine: control characters escaped, long lines cut", () => {
  assert.equal(safeCommandLine("python3 -m http.server 20001"), "python3 -m http.server 20001");
  assert.equal(safeCommandLine("a\nb\tc\rd\u001b[31me\u007f"), "a\\nb\\tc\\rd\\x1b[31me\\x7f");
  assert.equal(safeCommandLine("x\u0085y\u202ez"), "x\\x85y\\u202ez", "C1 and bidi overrides");
  assert.equal(safeCommandLine("héllo wörld ✓"), "héllo wörld ✓");
  const long = safeCommandLine("x".repeat(500));
  assert.equal([...long].length, 100);
  assert.ok(long.endsWith("…"));
  assert.equal([...safeCommandLine("é".repeat(100))].length, 100, "counted in characters");
  assert.equal(safeCommandLine("\n".repeat(80)).length, 100, "escapes count too");
});

test("commandFromCmdline: NUL-separated arguments", () => {
  assert.equal(
    commandFromCmdline("python3\0-m\0http.server\x0020001\0"),
    "python3 -m http.server 20001",
  );
  assert.equal(commandFromCmdline("nginx: worker process\0\0\0"), "nginx: worker process");
  assert.equal(commandFromCmdline(""), "");
});

test("parentFromStat: after the command, which may hold spaces and parentheses", () => {
  assert.equal(parentFromStat("4242 (node) S 4200 4242 4200 0 -1 4194560 ..."), 4200);
  assert.equal(parentFromStat("4242 (a) b) c) R 1 4242 ..."), 1);
  assert.equal(parentFromStat("4242 node S 1"), undefined);
  assert.equal(parentFromStat(""), undefined);
});

test("socketInodeOfLink: only socket links", () => {
  assert.equal(socketInodeOfLink("socket:[84104]"), 84104);
  assert.equal(socketInodeOfLink("pipe:[84104]"), undefined);
  assert.equal(socketInodeOfLink("/tmp/socket:[1]"), undefined);
  assert.equal(socketInodeOfLink("anon_inode:[eventpoll]"), undefined);
});

test("describePortHolders: uid and user, pid and command; one process named once", () => {
  const listener = (over: Partial<PortListener>): PortListener => ({
    family: "ipv4",
    address: "0.0.0.0",
    port: 20001,
    state: TCP_LISTEN,
    uid: 100005,
    inode: 1,
    owners: [],
    ...over,
  });
  const evil = {
    pid: 4242,
    uid: 100005,
    user: "acc-evil",
    command: "python3 -m http.server 20001",
  };
  assert.equal(
    describePortHolders(20001, [listener({ user: "acc-evil", owners: [evil] })]),
    "port 20001 is held by uid 100005 (acc-evil), pid 4242 (python3 -m http.server 20001)",
  );
  assert.equal(
    describePortHolders(20001, [
      listener({ owners: [evil] }),
      listener({ family: "ipv6", address: "::", inode: 2, owners: [evil] }),
    ]),
    "port 20001 is held by uid 100005 (acc-evil), pid 4242 (python3 -m http.server 20001)",
  );
  assert.equal(
    describePortHolders(20001, [
      listener({ owners: [evil, { pid: 4243, uid: 33, command: "worker" }] }),
    ]),
    "port 20001 is held by uid 100005 (acc-evil), pid 4242 (python3 -m http.server 20001); and by uid 33, pid 4243 (worker)",
  );
  assert.equal(
    describePortHolders(20001, [listener({ uid: 100006 })]),
    "port 20001 is held by uid 100006, no process found",
  );
  assert.equal(describePortHolders(20001, []), "nothing listens on port 20001");
});
