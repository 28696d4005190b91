// The idle clock's inputs (design.md, "Idle clock"): requests nginx logged per instance, and
// TCP connections still open to an instance's port. Health checks made by acc go straight to
// the port and are short, so they never show up in either.
import { open, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { isValidInstanceName } from "../core/validate.js";
import { hasErrno } from "../lib/errors.js";
import { ensureDir, writeFileAtomic } from "../lib/files.js";
import { accessLogPath } from "../drivers/nginx/render.js";
import type { InstanceRecord } from "../store/store.js";
import type { AccContext } from "./context.js";
import { parseProcNetTcp, readTcpSockets, TCP_ESTABLISHED, type TcpSocket } from "./listeners.js";

/** How far the access log has been read: the file's inode and the byte after the last whole line. */
export interface AccessLogPosition {
  inode: number;
  offset: number;
}

export interface AccessLogScan {
  /** Per instance, the latest request time (ms since the epoch) in the lines read. */
  seen: Map<string, number>;
  /** Where the next scan starts once this one is saved. */
  position: AccessLogPosition;
  bytesRead: number;
}

const READ_CHUNK = 1 << 20;
// nginx's lines are short; a "line" longer than this is garbage, and holding it would let
// one bad write grow memory without bound.
const MAX_LINE = 64 * 1024;

/**
 * Per instance, the latest `$msec` (as ms since the epoch) in lines of the `acc` log format
 * (`$msec $acc_instance $status ...`). Lines of unknown hosts (empty instance), and lines that
 * are not of that format, are skipped. Adds to `into` when given.
 */
export function parseAccessLines(
  text: string,
  into: Map<string, number> = new Map(),
): Map<string, number> {
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    const first = text.indexOf(" ", start);
    if (first !== -1 && first < end) {
      let second = text.indexOf(" ", first + 1);
      if (second === -1 || second > end) second = end;
      const name = text.slice(first + 1, second);
      const ms = Math.round(Number(text.slice(start, first)) * 1000);
      if (Number.isFinite(ms) && ms > 0 && name !== "") {
        const known = into.get(name);
        if (known === undefined) {
          if (isValidInstanceName(name)) into.set(name, ms);
        } else if (ms > known) {
          into.set(name, ms);
        }
      }
    }
    start = end + 1;
  }
  return into;
}

/** Where the position of the access log reader is kept between passes. */
export function accessLogPositionFile(ctx: Pick<AccContext, "paths">): string {
  return path.join(ctx.paths.run, "access-log.offset");
}

async function loadPosition(file: string): Promise<AccessLogPosition | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return undefined;
    throw error;
  }
  try {
    const value = JSON.parse(text) as Partial<AccessLogPosition>;
    if (Number.isSafeInteger(value.inode) && Number.isSafeInteger(value.offset)) {
      return { inode: value.inode ?? 0, offset: Math.max(0, value.offset ?? 0) };
    }
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
  }
  // Unreadable: reading the log again from the start is safe, activity only moves forward.
  return undefined;
}

export async function saveAccessLogPosition(
  ctx: Pick<AccContext, "paths">,
  position: AccessLogPosition,
): Promise<void> {
  await ensureDir(ctx.paths.run);
  await writeFileAtomic(accessLogPositionFile(ctx), `${JSON.stringify(position)}\n`);
}

async function statIfExists(file: string): Promise<{ ino: number; size: number } | undefined> {
  try {
    const s = await stat(file);
    return { ino: s.ino, size: s.size };
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return undefined;
    throw error;
  }
}

/**
 * Reads file from `from` up to `to` (the size seen at stat time: lines written meanwhile wait
 * for the next pass) a chunk at a time, so a 1 GB backlog costs no more memory than a small
 * one. Returns the offset after the last whole line: a line nginx is still writing is left
 * for the next pass, unless `takePartial` (a rotated file, which gets no more lines).
 */
async function readLines(
  file: string,
  from: number,
  to: number,
  seen: Map<string, number>,
  takePartial: boolean,
): Promise<number> {
  const handle = await open(file, "r");
  try {
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    let pending = Buffer.alloc(0);
    let position = from;
    let consumed = from;
    while (position < to) {
      const { bytesRead } = await handle.read(
        buffer,
        0,
        Math.min(READ_CHUNK, to - position),
        position,
      );
      if (bytesRead === 0) break;
      position += bytesRead;
      const chunk = buffer.subarray(0, bytesRead);
      const lastNewline = chunk.lastIndexOf(10);
      if (lastNewline === -1) {
        pending =
          pending.length + bytesRead > MAX_LINE ? Buffer.alloc(0) : Buffer.concat([pending, chunk]);
        continue;
      }
      // latin1 decodes every byte as is; the fields read are ASCII whatever the request held.
      parseAccessLines(
        pending.toString("latin1") + chunk.toString("latin1", 0, lastNewline + 1),
        seen,
      );
      consumed = position - bytesRead + lastNewline + 1;
      pending = Buffer.from(chunk.subarray(lastNewline + 1));
    }
    if (takePartial && pending.length > 0) {
      parseAccessLines(pending.toString("latin1"), seen);
      consumed = position;
    }
    return consumed;
  } finally {
    await handle.close();
  }
}

/**
 * Reads the access log lines written since the saved position, without saving the new one:
 * the caller saves it (saveAccessLogPosition) once what was read is recorded, so a crash in
 * between reads the lines again instead of losing them.
 */
export async function scanAccessLog(ctx: Pick<AccContext, "paths">): Promise<AccessLogScan> {
  const file = accessLogPath(ctx.paths);
  const seen = new Map<string, number>();
  const saved = await loadPosition(accessLogPositionFile(ctx));
  const current = await statIfExists(file);
  let bytesRead = 0;
  if (saved && current?.ino !== saved.inode) {
    // Rotated (logrotate names the old file access.log.1): finish it first.
    const rotated = await statIfExists(`${file}.1`);
    if (rotated?.ino === saved.inode && rotated.size > saved.offset) {
      await readLines(`${file}.1`, saved.offset, rotated.size, seen, true);
      bytesRead += rotated.size - saved.offset;
    }
  }
  if (!current) return { seen, position: saved ?? { inode: 0, offset: 0 }, bytesRead };
  // Same file, not truncated: go on from where the last pass stopped; otherwise from the start.
  const from =
    saved && saved.inode === current.ino && saved.offset <= current.size ? saved.offset : 0;
  const offset = await readLines(file, from, current.size, seen, false);
  bytesRead += offset - from;
  return { seen, position: { inode: current.ino, offset }, bytesRead };
}

/** Per instance, the latest request in the access log since the last call; saves the position. */
export async function readAccessLogActivity(
  ctx: Pick<AccContext, "paths">,
): Promise<Map<string, Date>> {
  const scan = await scanAccessLog(ctx);
  await saveAccessLogPosition(ctx, scan.position);
  return new Map([...scan.seen].map(([name, ms]) => [name, new Date(ms)]));
}

// nginx reaches instances on 127.0.0.1, so connections on ::1 or other addresses are not theirs.
function addLoopbackPorts(sockets: readonly TcpSocket[], into: Set<number>): Set<number> {
  for (const socket of sockets) {
    if (socket.address === "127.0.0.1" || socket.address === "::ffff:127.0.0.1") {
      if (socket.port > 0) into.add(socket.port);
    }
  }
  return into;
}

/**
 * Local ports of ESTABLISHED connections on 127.0.0.1 (alone, or IPv4-mapped in tcp6), from the
 * text of /proc/net/tcp or tcp6.
 */
export function loopbackConnectionPorts(text: string, into: Set<number> = new Set()): Set<number> {
  return addLoopbackPorts(parseProcNetTcp(text, { state: TCP_ESTABLISHED }), into);
}

/**
 * Local ports of the ESTABLISHED TCP connections on 127.0.0.1: the server side of a connection
 * to an instance (a websocket, a long request) has the instance's port as its local port.
 */
export async function openConnectionPorts(files?: readonly string[]): Promise<Set<number>> {
  const sockets = await readTcpSockets({
    state: TCP_ESTABLISHED,
    ...(files === undefined ? {} : { files }),
  });
  return addLoopbackPorts(sockets, new Set());
}

/**
 * Stores last_activity_at for each instance whose activity moved forward, in one store
 * transaction (10,000 single writes cost most of a monitor pass). `instances` (the current rows) saves a read when the caller has them.
 * Returns the new values, by instance name; names of instances that no longer exist are ignored.
 */
export async function recordActivity(
  ctx: Pick<AccContext, "store" | "now">,
  seen: ReadonlyMap<string, Date>,
  instances?: readonly Pick<InstanceRecord, "name" | "lastActivityAt">[],
): Promise<Map<string, string>> {
  const updated = new Map<string, string>();
  if (seen.size === 0) return updated;
  const byName = new Map(
    (instances ?? (await ctx.store.listInstanceActivity())).map((i) => [i.name, i]),
  );
  for (const [name, at] of seen) {
    const instance = byName.get(name);
    if (!instance) continue;
    const stored =
      instance.lastActivityAt === null ? -Infinity : Date.parse(instance.lastActivityAt);
    if (at.getTime() <= stored) continue;
    updated.set(name, at.toISOString());
  }
  await ctx.store.recordActivity([...updated].map(([name, at]) => ({ name, at })));
  return updated;
}
