// TCP sockets as the kernel lists them in /proc/net/tcp{,6}, and the processes holding them.
// Read by hand: no maintained library parses /proc/net/tcp, and `ss -ltnp` would be a process
// per call and text meant for people. The parsers are pure; the /proc reads are at the bottom.
import { escapeUntrusted } from "../core/untrusted-text.js";
import { BlockList } from "node:net";
import { readdir, readFile, readlink } from "node:fs/promises";
import os from "node:os";
import { hasErrno } from "../lib/errors.js";
import { allPids, isGoneOrClosed } from "../lib/processes.js";
import { userNamesOf } from "./users.js";

/** The `st` field of /proc/net/tcp: include/net/tcp_states.h. */
export const TCP_ESTABLISHED = 0x01;
export const TCP_LISTEN = 0x0a;
/** A closed connection the kernel keeps for up to a minute. */
export const TCP_TIME_WAIT = 0x06;

export type AddressFamily = "ipv4" | "ipv6";

/** One line of /proc/net/tcp or tcp6, its local end decoded. */
export interface TcpSocket {
  family: AddressFamily;
  /** "127.0.0.1", "0.0.0.0", "::", "::1", "::ffff:127.0.0.1" (IPv4-mapped) */
  address: string;
  port: number;
  /** TCP_LISTEN, TCP_ESTABLISHED, ... */
  state: number;
  /** The owner of the socket: the uid that created it. */
  uid: number;
  /** Matches the `socket:[inode]` links in /proc/<pid>/fd. 0 for sockets no process holds. */
  inode: number;
}

export interface ParseTcpOptions {
  /** Keep only sockets in this state; the others are not decoded. */
  state?: number;
  /**
   * The kernel prints each 32-bit word of an address as a number in host byte order, so the
   * text depends on the machine: little-endian (x86, arm64) unless said otherwise.
   */
  littleEndian?: boolean;
}

const HEX_ADDRESS_RE = /^(?:[0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):[0-9A-Fa-f]{4}$/;
const DECIMAL_RE = /^\d{1,10}$/;

/**
 * The sockets listed in the text of /proc/net/tcp or /proc/net/tcp6 (either: the family is
 * told by the address's length). The header line and lines that are not of that format are
 * skipped.
 */
export function parseProcNetTcp(text: string, options: ParseTcpOptions = {}): TcpSocket[] {
  const littleEndian = options.littleEndian ?? true;
  const sockets: TcpSocket[] = [];
  for (const line of text.split("\n")) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    const fields = line.trim().split(/\s+/);
    const [, local, , st, , , , uid, , inode] = fields;
    if (local === undefined || st === undefined || uid === undefined || inode === undefined)
      continue;
    if (!/^[0-9A-Fa-f]{2}$/.test(st)) continue;
    const state = Number.parseInt(st, 16);
    if (options.state !== undefined && state !== options.state) continue;
    if (!HEX_ADDRESS_RE.test(local) || !DECIMAL_RE.test(uid) || !DECIMAL_RE.test(inode)) continue;
    const colon = local.indexOf(":");
    const address = decodeProcAddress(local.slice(0, colon), littleEndian);
    if (address === undefined) continue;
    sockets.push({
      ...address,
      port: Number.parseInt(local.slice(colon + 1), 16),
      state,
      uid: Number(uid),
      inode: Number(inode),
    });
  }
  return sockets;
}

/**
 * An address as /proc/net/tcp{,6} prints it (8 or 32 hex digits, 32-bit words in host order),
 * in its usual text form; undefined for anything else.
 */
export function decodeProcAddress(
  hex: string,
  littleEndian = true,
): { family: AddressFamily; address: string } | undefined {
  if (!/^(?:[0-9A-Fa-f]{8}|[0-9A-Fa-f]{32})$/.test(hex)) return undefined;
  const bytes: number[] = [];
  for (let word = 0; word < hex.length; word += 8) {
    const wordBytes = [0, 2, 4, 6].map((i) =>
      Number.parseInt(hex.slice(word + i, word + i + 2), 16),
    );
    bytes.push(...(littleEndian ? wordBytes.reverse() : wordBytes));
  }
  if (bytes.length === 4) return { family: "ipv4", address: bytes.join(".") };
  return { family: "ipv6", address: formatIpv6(bytes) };
}

/** RFC 5952 text of 16 bytes: lower case, the longest run of zero groups as "::". */
function formatIpv6(bytes: readonly number[]): string {
  const isMapped =
    bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255;
  if (isMapped) return `::ffff:${bytes.slice(12).join(".")}`;
  const groups = [0, 1, 2, 3, 4, 5, 6, 7].map(
    (i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0),
  );
  let bestStart = -1;
  let bestLength = 1; // a single zero group stays "0"
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && groups[end] === 0) end++;
    if (end - i > bestLength) {
      bestStart = i;
      bestLength = end - i;
    }
    i = end;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * Whether only this machine can reach a socket bound to the address: 127.0.0.0/8, ::1, or an
 * IPv4-mapped 127.x. The wildcards (0.0.0.0, ::) and every other address are reachable from
 * other hosts; so is anything that is not an address at all.
 */
export function isLoopbackAddress(address: string): boolean {
  // check() answers false for text that is not an address of the family.
  return LOOPBACK.check(address, address.includes(":") ? "ipv6" : "ipv4");
}

/** "127.0.0.1:20001", "[::]:20001". */
export function formatEndpoint(socket: { address: string; port: number }): string {
  return socket.address.includes(":")
    ? `[${socket.address}]:${socket.port}`
    : `${socket.address}:${socket.port}`;
}

const COMMAND_MAX = 100;

/**
 * A command line fit to show on one line of a terminal or a log: control characters (and the
 * bidirectional overrides that reorder what a reader sees) escaped, cut to about `max` characters.
 * A process sets its own command line, so it is untrusted text.
 */
export function safeCommandLine(text: string, max = COMMAND_MAX): string {
  const escaped = escapeUntrusted(text);
  const chars = [...escaped];
  return chars.length <= max ? escaped : `${chars.slice(0, max - 1).join("")}…`;
}

/** A process's command line from the raw /proc/<pid>/cmdline (arguments ended by NUL bytes). */
export function commandFromCmdline(raw: string): string {
  return raw.replace(/\0+$/, "").split("\0").join(" ");
}

/** The inode of a /proc/<pid>/fd link to a socket: "socket:[12345]". */
export function socketInodeOfLink(link: string): number | undefined {
  const match = /^socket:\[(\d+)\]$/.exec(link);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

// ---------------------------------------------------------------------------------------------
// Reading /proc. Processes come and go while it is read, and a process of another user may be
// closed to us (EACCES when not root): such a process is skipped, never an error.

const TCP_FILES = ["/proc/net/tcp", "/proc/net/tcp6"];

/** The TCP sockets of this machine (this network namespace), both families. */
export async function readTcpSockets(
  options: { state?: number; files?: readonly string[] } = {},
): Promise<TcpSocket[]> {
  const sockets: TcpSocket[] = [];
  for (const file of options.files ?? TCP_FILES) {
    let text: string;
    try {
      text = await readFile(file, "latin1");
    } catch (error) {
      // No tcp6 file when IPv6 is disabled.
      if (hasErrno(error, "ENOENT")) continue;
      throw error;
    }
    sockets.push(
      ...parseProcNetTcp(text, {
        littleEndian: os.endianness() === "LE",
        ...(options.state === undefined ? {} : { state: options.state }),
      }),
    );
  }
  return sockets;
}

/** The listening TCP sockets, both families. */
export function readListeners(): Promise<TcpSocket[]> {
  return readTcpSockets({ state: TCP_LISTEN });
}

/** The socket inodes a process holds; none when it is gone or closed to us. */
async function socketInodesOf(pid: number): Promise<Set<number>> {
  const inodes = new Set<number>();
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch (error) {
    if (isGoneOrClosed(error)) return inodes;
    throw error;
  }
  for (const fd of fds) {
    let link: string;
    try {
      link = await readlink(`/proc/${pid}/fd/${fd}`);
    } catch (error) {
      if (isGoneOrClosed(error)) continue;
      throw error;
    }
    const inode = socketInodeOfLink(link);
    if (inode !== undefined) inodes.add(inode);
  }
  return inodes;
}

export interface ProcessInfo {
  pid: number;
  /** Real uid. */
  uid: number;
  /** Safe to print (see safeCommandLine). */
  command: string;
}

/** A process's uid and command line; undefined when it is gone (or closed to us). */
export async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    if (uid === undefined) return undefined;
    let command = commandFromCmdline(await readFile(`/proc/${pid}/cmdline`, "utf8"));
    // Kernel threads and zombies have no command line; ps shows their name in brackets.
    if (command === "") command = `[${(await readFile(`/proc/${pid}/comm`, "utf8")).trim()}]`;
    return { pid, uid: Number(uid), command: safeCommandLine(command) };
  } catch (error) {
    if (isGoneOrClosed(error)) return undefined;
    throw error;
  }
}

export interface SocketOwner extends ProcessInfo {
  inode: number;
}

/**
 * The processes holding these sockets: one entry per process and socket (forked workers share
 * a listening socket), ordered by pid. Scans every process's fds unless `pids` narrows it.
 * Processes that end meanwhile, or whose fds are closed to us, are left out.
 */
export async function socketOwners(
  inodes: Iterable<number>,
  options: { pids?: Iterable<number> } = {},
): Promise<SocketOwner[]> {
  const wanted = new Set(inodes);
  const owners: SocketOwner[] = [];
  if (wanted.size === 0) return owners;
  const pids = options.pids === undefined ? await allPids() : [...new Set(options.pids)];
  for (const pid of pids.sort((a, b) => a - b)) {
    const held = [...(await socketInodesOf(pid))].filter((inode) => wanted.has(inode));
    if (held.length === 0) continue;
    const info = await processInfo(pid);
    if (info === undefined) continue; // ended since: it holds nothing now
    for (const inode of held) owners.push({ ...info, inode });
  }
  return owners;
}

// ---------------------------------------------------------------------------------------------
// Who holds a port

export interface PortHolderProcess extends ProcessInfo {
  /** The name of uid, when it has one in /etc/passwd. */
  user?: string;
}

export interface PortListener extends TcpSocket {
  /** The name of the socket's uid, when it has one. */
  user?: string;
  /** The processes holding it; empty when none could be seen (ended, or closed to us). */
  owners: PortHolderProcess[];
}

/** The sockets listening on this TCP port (any address, both families) and who holds them. */
export async function portHolders(port: number): Promise<PortListener[]> {
  const listeners = (await readListeners()).filter((l) => l.port === port);
  if (listeners.length === 0) return [];
  const owners = await socketOwners(listeners.map((l) => l.inode));
  const names = await userNamesOf([...listeners.map((l) => l.uid), ...owners.map((o) => o.uid)]);
  const withName = <T extends { uid: number }>(item: T): T & { user?: string } => {
    const user = names.get(item.uid);
    return user === undefined ? item : { ...item, user };
  };
  return listeners.map((listener) => ({
    ...withName(listener),
    owners: owners
      .filter((o) => o.inode === listener.inode)
      .map(({ inode: _inode, ...process }) => withName(process)),
  }));
}

/**
 * One line naming who holds a port, such as
 * "port 20001 is held by uid 100005 (acc-evil), pid 4242 (python3 -m http.server 20001)".
 * A process holding it on several addresses is named once.
 */
export function describePortHolders(port: number, listeners: readonly PortListener[]): string {
  if (listeners.length === 0) return `nothing listens on port ${port}`;
  const uidText = (uid: number, user: string | undefined): string =>
    user === undefined ? `uid ${uid}` : `uid ${uid} (${user})`;
  const parts: string[] = [];
  const seen = new Set<string>();
  for (const listener of listeners) {
    const holders =
      listener.owners.length > 0
        ? listener.owners.map((o) => `${uidText(o.uid, o.user)}, pid ${o.pid} (${o.command})`)
        : [`${uidText(listener.uid, listener.user)}, no process found`];
    for (const holder of holders) {
      if (seen.has(holder)) continue;
      seen.add(holder);
      parts.push(holder);
    }
  }
  return `port ${port} is held by ${parts.join("; and by ")}`;
}
