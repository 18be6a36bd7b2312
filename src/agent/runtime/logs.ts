// Reading a container's k8s-file log (written by conmon) incrementally, from a cursor.
//
// Format: `<RFC3339Nano> <stdout|stderr> <F|P> <text>\n`; conmon writes P for a chunk that
// is not the end of a line (no newline yet, or a line longer than 8 KiB), and the record ends
// at the next F line of the same stream. A record is emitted only once it is complete, so a
// cursor never points into the middle of one (unless it grows past `maxMessageBytes`, where it
// is cut, as CloudWatch Logs caps events at 256 KiB anyway).
//
// Rotation, chosen over conmon's --log-size-max (which truncates and so loses lines): when
// the reader has reached the current file (`ctr.log`) and it is bigger than the limit, the
// previous rotated file (already read) is deleted, `ctr.log` is renamed `ctr.log.1`, and
// conmon is told to reopen its log through the bundle's `ctl` fifo. A cursor names a file by
// inode, and a rename keeps the inode, so reading continues in `ctr.log.1` and moves on to the
// new `ctr.log` once it is consumed. At most two files exist; conmon's own --log-size-max is
// kept as a far higher hard cap in case nobody reads.
import { closeSync, constants, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';

export interface LogCursor {
  /** Inode of the file the offset is in; 0 = start from the oldest file. */
  ino: number;
  offset: number;
}

export interface LogEvent {
  timestamp: number;
  stream: 'stdout' | 'stderr';
  message: string;
  /**
   * The byte position of the event's first line in its file: identifies it on a re-read, and
   * grows from event to event (they are ordered by where they start).
   */
  pos: number;
}

export interface LogRead {
  events: LogEvent[];
  /** Where the next read starts. */
  cursor: LogCursor;
}

export const START: LogCursor = { ino: 0, offset: 0 };
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** RFC3339 with nanoseconds (and any offset) → epoch ms; NaN if malformed. */
export function parseTimestamp(ts: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return NaN;
  const ms = (m[2] ?? '').padEnd(3, '0').slice(0, 3);
  return Date.parse(`${m[1]}.${ms}${m[3]}`);
}

interface Line { start: number; end: number; timestamp: number; stream: 'stdout' | 'stderr'; partial: boolean; text: Buffer }

/** Splits complete lines (ending in \n) of a buffer read at `base`; malformed lines are skipped. */
function splitLines(buf: Buffer, base: number): { lines: Line[]; end: number } {
  const lines: Line[] = [];
  let pos = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) break;
    const raw = buf.subarray(pos, nl);
    const s1 = raw.indexOf(0x20);
    const s2 = s1 < 0 ? -1 : raw.indexOf(0x20, s1 + 1);
    const s3 = s2 < 0 ? -1 : raw.indexOf(0x20, s2 + 1);
    if (s2 > 0) {
      const stream = raw.subarray(s1 + 1, s2).toString();
      const tag = raw.subarray(s2 + 1, s3 < 0 ? raw.length : s3).toString();
      const timestamp = parseTimestamp(raw.subarray(0, s1).toString());
      if ((stream === 'stdout' || stream === 'stderr') && !Number.isNaN(timestamp)) {
        lines.push({
          start: base + pos, end: base + nl + 1, timestamp, stream,
          // CRI allows tags such as "F:x"; only the first field matters.
          partial: tag.split(':')[0] === 'P',
          text: s3 < 0 ? Buffer.alloc(0) : raw.subarray(s3 + 1),
        });
      }
    }
    pos = nl + 1;
  }
  return { lines, end: base + pos };
}

interface RecordSpan { first: number; last: number; complete: boolean; event: LogEvent; size: number }

/**
 * Pure: turns the bytes at `base` into complete records and the offset just after the last
 * byte they cover. `final` (the container has exited) also emits unfinished records.
 */
export function parseK8sLog(buf: Buffer, base: number, final = false, maxMessageBytes = MAX_MESSAGE_BYTES): { events: LogEvent[]; next: number } {
  const { lines, end } = splitLines(buf, base);
  const records: RecordSpan[] = [];
  const open = new Map<string, RecordSpan & { parts: Buffer[] }>();
  lines.forEach((l, i) => {
    let r = open.get(l.stream);
    if (!r) {
      r = { first: i, last: i, complete: false, size: 0, parts: [], event: { timestamp: l.timestamp, stream: l.stream, message: '', pos: l.start } };
      records.push(r);
      open.set(l.stream, r);
    }
    r.parts.push(l.text);
    r.size += l.text.length;
    r.last = i;
    if (!l.partial || r.size >= maxMessageBytes) {
      r.complete = true;
      r.event.message = Buffer.concat(r.parts).toString('utf8');
      open.delete(l.stream);
    }
  });
  for (const r of open.values()) {
    if (final) { r.complete = true; r.event.message = Buffer.concat(r.parts).toString('utf8'); }
  }
  // Cut before the first line of the first incomplete record, then pull the cut back before
  // any record that would straddle it (possible when streams interleave), until stable.
  let cut = records.find((r) => !r.complete)?.first ?? lines.length;
  for (let moved = true; moved;) {
    moved = false;
    for (const r of records) if (r.first < cut && r.last >= cut) { cut = r.first; moved = true; }
  }
  const events = records.filter((r) => r.last < cut).sort((a, b) => a.first - b.first).map((r) => r.event);
  const next = cut >= lines.length ? end : lines[cut]!.start;
  return { events, next };
}

function inode(path: string): { ino: number; size: number } | undefined {
  try { const s = statSync(path); return { ino: s.ino, size: s.size }; } catch { return undefined; }
}

function readAt(path: string, offset: number, max: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(max);
    const n = readSync(fd, buf, 0, max, offset);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export interface ReadOptions { final?: boolean; maxBytes?: number; maxMessageBytes?: number }

/** Reads what follows `cursor` in the log at `logPath` (and its rotated `logPath.1`). */
export function readLog(logPath: string, cursor: LogCursor, opts: ReadOptions = {}): LogRead {
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  // Current first: it exists again only once conmon has reopened its log, and from then on
  // nothing is written to the rotated file, so a size of it taken afterwards is final.
  const current = inode(logPath);
  const previous = inode(`${logPath}.1`);
  let file: string;
  let offset = cursor.offset;
  let ino: number;
  if (previous && cursor.ino === previous.ino) {
    if (offset >= previous.size && current) {
      // The rotated file is consumed: move on to the current one.
      file = logPath; ino = current.ino; offset = 0;
    } else { file = `${logPath}.1`; ino = previous.ino; }
  } else if (current && cursor.ino === current.ino) {
    file = logPath; ino = current.ino;
  } else if (previous) {
    file = `${logPath}.1`; ino = previous.ino; offset = 0; // unknown file: start at the oldest
  } else if (current) {
    file = logPath; ino = current.ino; offset = cursor.ino === 0 ? cursor.offset : 0;
  } else {
    return { events: [], cursor };
  }
  const size = (file === logPath ? current : previous)!.size;
  if (offset > size) offset = 0; // truncated under us (conmon's hard cap): start over
  const buf = readAt(file, offset, Math.min(maxBytes, size - offset));
  // A rotated file no longer grows once conmon has reopened (the current file exists).
  const final = opts.final || (file !== logPath && current !== undefined);
  let { events, next } = parseK8sLog(buf, offset, final, opts.maxMessageBytes);
  if (next === offset && buf.length === maxBytes) {
    // One record bigger than a whole read: take it as it is rather than stall.
    ({ events, next } = parseK8sLog(buf, offset, true, opts.maxMessageBytes));
  }
  const result: LogRead = { events, cursor: { ino, offset: next } };
  if (file !== logPath && next >= size && current && events.length === 0) return readLog(logPath, { ino: current.ino, offset: 0 }, opts);
  return result;
}

/**
 * Rotates when the reader is in the current file and it has grown past `maxBytes`. The
 * previously rotated file is deleted only then, i.e. once the cursor has moved past it.
 * Returns whether it rotated.
 */
export function rotateLog(logPath: string, ctlPath: string, cursor: LogCursor, maxBytes: number): boolean {
  const current = inode(logPath);
  if (!current || current.ino !== cursor.ino || current.size < maxBytes) return false;
  rmSync(`${logPath}.1`, { force: true });
  renameSync(logPath, `${logPath}.1`);
  try {
    // conmon's control fifo: "2 0 0" = reopen the log file. Non-blocking: if conmon has
    // exited there is no reader (ENXIO) and nothing left to reopen.
    const fd = openSync(ctlPath, constants.O_WRONLY | constants.O_NONBLOCK);
    try { writeSync(fd, '2 0 0\n'); } finally { closeSync(fd); }
  } catch { /* container gone */ }
  return true;
}
