// Berth's reserve for its own database on the data disk. Container layers, volumes and
// logs of tenants' tasks share that filesystem, so a task can fill it; the audit trail and
// the calls that let an owner stop what fills it must still commit then.
//
// The reserve lives inside the database file: Berth keeps `targetBytes` of free pages on
// SQLite's freelist (a blob written and deleted; without auto_vacuum the file keeps those
// pages) and a WAL file of at least that size (it is reused from its start, never shrunk).
// SQLite takes new pages from the freelist before it grows the file, so database writes
// go on when the filesystem has no byte left, and no tenant can take these pages: they
// are not free space of the filesystem. A reserve file that Berth frees when SQLite says
// SQLITE_FULL would not do: a task still writing would take the freed space at once.
// When the filesystem is short again, the reserve is topped up once space is back.
import { readFileSync, realpathSync, statSync, statfsSync } from 'node:fs';
import type Database from 'better-sqlite3';

export interface DiskSpace { freeBytes: number; totalBytes: number }
export type SpaceProbe = (path: string) => DiskSpace;

export const statfsProbe: SpaceProbe = (path) => {
  const s = statfsSync(path);
  return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
};

/** `ok`; `short`: the filesystem has less free space than the reserve (Berth runs on it); `exhausted`: no room left for a record. */
export type DiskState = 'ok' | 'short' | 'exhausted';

export interface DiskStatus {
  state: DiskState;
  dataDir: string;
  /** The filesystem holding the data dir, e.g. `/dev/loop3 (ext4) mounted on /srv/berth`. */
  filesystem: string;
  freeBytes: number;
  totalBytes: number;
  reserve: { targetBytes: number; availableBytes: number };
  /** Set unless the state is ok: what is wrong, in one sentence. */
  problem?: string;
}

/** Below this much room (filesystem and reserve alike) no batch of records is sure to fit. */
export const MIN_ROOM_BYTES = 256 * 1024;
// 32 MiB: some 20,000 audit records; writing it takes a few hundred ms once, after start.
export const DEFAULT_RESERVE_BYTES = 32 * 1024 * 1024;

/** The state of the data disk: a pure function of what statfs and the freelist say. */
export function diskState(freeBytes: number, reserveAvailable: number, targetBytes: number): DiskState {
  if (freeBytes + reserveAvailable < MIN_ROOM_BYTES) return 'exhausted';
  if (freeBytes < Math.max(targetBytes, MIN_ROOM_BYTES)) return 'short';
  return 'ok';
}

/** The sentence Berth says (healthz, log, errors) when its disk is not ok. */
export function diskProblem(s: Omit<DiskStatus, 'problem'>): string | undefined {
  if (s.state === 'ok') return undefined;
  const head = `Berth's data disk is full (${s.freeBytes} bytes free on ${s.filesystem}, which holds ${s.dataDir})`;
  if (s.state === 'exhausted') return `${head} and its database reserve is used up (${s.reserve.availableBytes} bytes left): no call can be recorded in the audit trail until space is freed on that filesystem.`;
  return `${head}: Berth runs on its database reserve (${s.reserve.availableBytes} of ${s.reserve.targetBytes} bytes left) and accepts only reads and calls that free resources (StopTask, DeleteService, UpdateService, DeleteLogGroup, …) until space is freed.`;
}

/** BERTH_DB_RESERVE_MB: the reserve's size in MiB (0 turns it off). */
export function reserveBytesFromEnv(env: NodeJS.ProcessEnv): number {
  const text = env.BERTH_DB_RESERVE_MB;
  if (text === undefined || text === '') return DEFAULT_RESERVE_BYTES;
  const mb = Number(text);
  if (!Number.isFinite(mb) || mb < 0) throw new Error(`BERTH_DB_RESERVE_MB must be a number of MiB (0 or more); got '${text}'`);
  return Math.round(mb * 1024 * 1024);
}

/** `source (fstype) mounted on point` for the mount holding `path` (/proc/self/mountinfo). */
export function filesystemOf(path: string): string {
  let real = path;
  try { real = realpathSync(path); } catch { /* not there yet */ }
  let best: { point: string; text: string } | undefined;
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [left, right] = line.split(' - ');
      if (!left || !right) continue;
      const point = (left.split(' ')[4] ?? '').replace(/\\040/g, ' ');
      const [fstype, source] = right.split(' ');
      const inside = point === '/' || real === point || real.startsWith(`${point}/`);
      if (inside && (!best || point.length >= best.point.length)) best = { point, text: `${source} (${fstype}) mounted on ${point}` };
    }
  } catch { /* not Linux */ }
  return best?.text ?? `the filesystem of ${real}`;
}

/** SQLite or the kernel saying there is no space. */
export function isNoSpace(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC';
}

export interface DiskReserveOptions {
  db: Database.Database;
  dataDir: string;
  targetBytes: number;
  log: (line: string) => void;
  probe?: SpaceProbe;
  /** Epoch ms (status is cached for a moment: calls ask on every request). */
  now?: () => number;
}

const CACHE_MS = 500;
const TICK_MS = 5_000;

export class DiskReserve {
  private cached: { at: number; status: DiskStatus } | undefined;
  private lastState: DiskState = 'ok';
  private readonly filesystem: string;
  private readonly probe: SpaceProbe;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: DiskReserveOptions) {
    this.probe = o.probe ?? statfsProbe;
    this.now = o.now ?? Date.now;
    this.filesystem = filesystemOf(o.dataDir);
    o.db.exec('CREATE TABLE IF NOT EXISTS db_reserve (b BLOB)');
  }

  /** Tops the reserve up now and then every few seconds (and says when the state changes). */
  start(): void {
    // The first fill is deferred a moment so that start-up does not wait for it.
    setImmediate(() => this.tick()).unref();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** Bytes on SQLite's freelist: what the database can still write without the filesystem. */
  reserveAvailable(): number {
    const page = this.o.db.pragma('page_size', { simple: true }) as number;
    const free = this.o.db.pragma('freelist_count', { simple: true }) as number;
    return page * free;
  }

  status(fresh = false): DiskStatus {
    const at = this.now();
    if (!fresh && this.cached && at - this.cached.at < CACHE_MS) return this.cached.status;
    let space: DiskSpace;
    try { space = this.probe(this.o.dataDir); } catch { space = { freeBytes: Number.MAX_SAFE_INTEGER, totalBytes: 0 }; }
    const available = this.reserveAvailable();
    const base = {
      state: diskState(space.freeBytes, available, this.o.targetBytes), dataDir: this.o.dataDir, filesystem: this.filesystem,
      freeBytes: space.freeBytes, totalBytes: space.totalBytes, reserve: { targetBytes: this.o.targetBytes, availableBytes: available },
    };
    const problem = diskProblem(base);
    const status: DiskStatus = problem ? { ...base, problem } : base;
    this.cached = { at, status };
    this.report(status);
    return status;
  }

  /** A write failed: look again now (the error may be the disk). */
  noteFailure(e: unknown): DiskStatus | undefined {
    if (!isNoSpace(e)) return undefined;
    return this.status(true);
  }

  /** Bytes of the WAL file (reused from its start after each checkpoint, so it is room for commits). */
  walBytes(): number {
    try { return statSync(`${this.o.db.name}-wal`).size; } catch { return 0; }
  }

  /**
   * Grows the freelist and the WAL back to the target when the filesystem has room for it
   * (and is not short after): one blob of the target's size written and deleted takes
   * freelist pages first, grows the file by what was missing, and leaves a WAL that large.
   */
  replenish(): boolean {
    const target = this.o.targetBytes;
    const available = this.reserveAvailable();
    const wal = this.walBytes();
    if (target === 0 || (available >= target / 2 && wal >= target / 2)) return false;
    let space: DiskSpace;
    try { space = this.probe(this.o.dataDir); } catch { return false; }
    const needed = Math.max(0, target - available) + Math.max(0, target - wal);
    if (space.freeBytes < needed + target) return false;
    try {
      this.o.db.prepare('INSERT INTO db_reserve (b) VALUES (zeroblob(?))').run(target);
      this.o.db.exec('DELETE FROM db_reserve');
      this.o.db.pragma('wal_checkpoint(PASSIVE)');
    } catch (e) {
      this.o.log(`disk: could not grow the database reserve: ${(e as Error).message}`);
      return false;
    }
    this.o.log(`disk: database reserve at ${this.reserveAvailable()} free bytes in the database and a ${this.walBytes()}-byte WAL (target ${target}) on ${this.filesystem}`);
    return true;
  }

  private tick(): void {
    if (this.closed) return;
    try {
      const before = this.status(true);
      if (before.state !== 'exhausted' && this.replenish()) this.status(true);
    } catch (e) {
      this.o.log(`disk: ${(e as Error).message}`);
    }
  }

  /** Logs each change of state once, precisely. */
  private report(s: DiskStatus): void {
    if (s.state === this.lastState) return;
    this.lastState = s.state;
    this.o.log(s.problem ? `disk: ${s.problem}` : `disk: space is back on ${s.filesystem} (${s.freeBytes} bytes free); all calls are accepted again`);
  }
}
