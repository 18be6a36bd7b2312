// Unit tests of the k8s-file log reader and rotation (files written by the test, no conmon).
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseK8sLog, parseTimestamp, readLog, rotateLog, START, type LogCursor } from '../../src/agent/runtime/logs.js';

const TS = '2026-01-02T03:04:05.123456789+00:00';
const line = (stream: string, tag: string, text: string, ts = TS) => `${ts} ${stream} ${tag} ${text}\n`;
const msgs = (buf: string, final = false) => parseK8sLog(Buffer.from(buf), 0, final).events.map((e) => `${e.stream}:${e.message}`);

describe('k8s-file parsing', () => {
  it('parses timestamps with nanoseconds and offsets', () => {
    assert.equal(parseTimestamp(TS), Date.UTC(2026, 0, 2, 3, 4, 5, 123));
    assert.equal(parseTimestamp('2026-01-02T03:04:05+02:00'), Date.UTC(2026, 0, 2, 1, 4, 5));
    assert.ok(Number.isNaN(parseTimestamp('yesterday')));
  });

  it('joins P partials up to the F line, keeps streams apart, keeps empty lines', () => {
    const buf = line('stdout', 'P', 'hel') + line('stdout', 'P', 'lo ') + line('stdout', 'F', 'world') + line('stderr', 'F', '') + line('stdout', 'F', 'x y  z');
    assert.deepEqual(msgs(buf), ['stdout:hello world', 'stderr:', 'stdout:x y  z']);
  });

  it('stops before an unfinished record (and after a torn line) unless final', () => {
    const done = line('stdout', 'F', 'one');
    const buf = done + line('stdout', 'P', 'tw') + '2026-01-02T03:04:05.1+00:00 stdo';
    const r = parseK8sLog(Buffer.from(buf), 100, false);
    assert.deepEqual(r.events.map((e) => e.message), ['one']);
    assert.equal(r.next, 100 + Buffer.byteLength(done));
    assert.deepEqual(parseK8sLog(Buffer.from(buf), 0, true).events.map((e) => e.message), ['one', 'tw']);
  });

  it('never splits a record across the cut when streams interleave', () => {
    // stdout's record completes after stderr's unfinished one began: neither is emitted yet.
    const first = line('stdout', 'F', 'a');
    const buf = first + line('stdout', 'P', 'b1') + line('stderr', 'P', 'e1') + line('stdout', 'F', 'b2');
    const r = parseK8sLog(Buffer.from(buf), 0);
    assert.deepEqual(r.events.map((e) => e.message), ['a']);
    assert.equal(r.next, Buffer.byteLength(first));
  });

  it('gives each record the position of its first line, increasing even when streams interleave', () => {
    // stderr's one-line record ends before stdout's two-line one: ordered (and placed) by start.
    const a = line('stdout', 'P', 'o1'), b = line('stderr', 'F', 'e'), c = line('stdout', 'F', 'o2'), d = line('stdout', 'F', 'n');
    const r = parseK8sLog(Buffer.from(a + b + c + d), 1000);
    const len = (s: string) => Buffer.byteLength(s);
    assert.deepEqual(r.events.map((e) => [e.message, e.pos]), [['o1o2', 1000], ['e', 1000 + len(a)], ['n', 1000 + len(a + b + c)]]);
  });

  it('cuts a record that grows past the maximum event size', () => {
    const buf = line('stdout', 'P', 'x'.repeat(10)) + line('stdout', 'P', 'y'.repeat(10)) + line('stdout', 'F', 'z');
    assert.deepEqual(parseK8sLog(Buffer.from(buf), 0, false, 15).events.map((e) => e.message), ['x'.repeat(10) + 'y'.repeat(10), 'z']);
  });

  it('keeps multi-byte characters intact and counts offsets in bytes', () => {
    const buf = line('stdout', 'F', 'héllo ☃');
    const r = parseK8sLog(Buffer.from(buf), 0);
    assert.deepEqual(r.events.map((e) => e.message), ['héllo ☃']);
    assert.equal(r.next, Buffer.byteLength(buf));
  });
});

describe('readLog / rotateLog', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-logs-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads incrementally, survives rotation, never repeats or loses a line', () => {
    const log = join(dir, 'ctr.log');
    const ctl = join(dir, 'ctl'); // a plain file standing in for conmon's fifo
    writeFileSync(ctl, '');
    writeFileSync(log, '');
    const seen: string[] = [];
    let cursor: LogCursor = START;
    let n = 0;
    const write = (k: number) => { for (let i = 0; i < k; i++) appendFileSync(log, line('stdout', 'F', `l${n++}`)); };
    const read = () => { const r = readLog(log, cursor, { maxBytes: 200 }); seen.push(...r.events.map((e) => e.message)); cursor = r.cursor; return r; };
    write(3); read();
    assert.deepEqual(seen, ['l0', 'l1', 'l2']);
    assert.equal(rotateLog(log, ctl, cursor, 10_000), false); // small: no rotation
    assert.equal(rotateLog(log, ctl, cursor, 10), true);
    assert.equal(readFileSync(ctl, 'utf8'), '2 0 0\n');
    // conmon keeps writing to the renamed file until it reopens, then writes a new one.
    appendFileSync(`${log}.1`, line('stdout', 'F', `l${n++}`));
    write(2);
    while (read().events.length) { /* drain */ }
    assert.deepEqual(seen, ['l0', 'l1', 'l2', 'l3', 'l4', 'l5']);
    assert.equal(cursor.ino, statSync(log).ino);
    // A second rotation deletes the first rotated file (already consumed).
    write(40);
    assert.equal(rotateLog(log, ctl, cursor, 10), true);
    while (read().events.length) { /* drain, 200 bytes at a time */ }
    assert.equal(seen.length, 46);
    assert.equal(seen.at(-1), 'l45');
  });

  it('does not rotate while the reader is still behind in a rotated file', () => {
    const log = join(dir, 'b.log');
    writeFileSync(log, line('stdout', 'F', 'a'));
    renameSync(log, `${log}.1`);
    writeFileSync(log, line('stdout', 'F', 'b'));
    const r = readLog(log, START);
    assert.deepEqual(r.events.map((e) => e.message), ['a']);
    assert.equal(rotateLog(log, join(dir, 'nofifo'), r.cursor, 1), false);
    assert.deepEqual(readLog(log, r.cursor).events.map((e) => e.message), ['b']);
  });

  it('starts over when the file was truncated under the cursor', () => {
    const log = join(dir, 'c.log');
    writeFileSync(log, line('stdout', 'F', 'a') + line('stdout', 'F', 'b'));
    const r = readLog(log, START);
    writeFileSync(log, line('stdout', 'F', 'c'));
    assert.deepEqual(readLog(log, r.cursor).events.map((e) => e.message), ['c']);
  });
});
