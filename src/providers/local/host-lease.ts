// Host-wide coordination between the Berth servers on one machine: a lock (flock(1) on a
// file, released by the kernel when its holder dies) and the slot leases. A slot n gives a
// Berth data dir its own bridge `berth<n>` and subnet 10.(200+n).0.0/16, so several Berths
// (parallel tests, a dev and a CI server) never collide. A lease belongs to the data dir,
// not to the process: instances outlive their control plane, and a restarted server finds
// its slot again. A lease is stale once its data dir is gone, or once neither its server nor
// any instance of it is left; the next Berth to prepare wipes its host state and frees it.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isSameProcess, processStartTime, readJson, writeFileAtomic } from './exec.js';

export const MAX_SLOTS = 56; // 10.200.0.0/16 … 10.255.0.0/16

export interface SlotNetwork {
  slot: number;
  bridge: string;
  /** Second octet of every address of the slot. */
  octet: number;
  subnet: string;
  gateway: string;
  prefixLength: number;
}

export function slotNetwork(slot: number): SlotNetwork {
  const octet = 200 + slot;
  return { slot, bridge: `berth${slot}`, octet, subnet: `10.${octet}.0.0/16`, gateway: `10.${octet}.0.1`, prefixLength: 16 };
}

/**
 * Runs `fn` while holding an exclusive flock on `lockFile`. The lock is held by a `flock`
 * child whose stdin is our pipe: if this process dies, the pipe closes, the child exits, and
 * the kernel drops the lock — no stale lock is possible.
 */
export async function withFileLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  const child = spawn('flock', ['-x', lockFile, 'sh', '-c', 'echo locked; read _ || true'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let errText = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { errText += d; });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('locked')) resolve(); });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`flock ${lockFile} exited (${code}): ${errText.trim()}`)));
  });
  try {
    return await fn();
  } finally {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.stdin.end();
    await exited;
  }
}

interface LeaseFile { dataDir: string; slot: number }
/** Kept in the Berth data dir: the slot it holds and the process that last prepared it. */
export interface SlotMarker { slot: number; hostStateDir: string; holders: { pid: number; start: string }[] }

/** What SlotLeases needs to know about a Berth data dir and the host. */
export interface SlotPolicy {
  /** Where a data dir keeps its marker. */
  markerFile(dataDir: string): string;
  /** Whether the data dir still has instances or task networks (then its slot is kept even with no live server). */
  hasState(dataDir: string): boolean;
  /** False when the slot's subnet is used by something else on the host. */
  usable(slot: number): Promise<boolean>;
  /** Wipes whatever a stale slot left on the host (its instances, namespaces, veths, bridge). */
  reclaim(slot: number): Promise<void>;
}

export class SlotLeases {
  private readonly dir: string;
  constructor(readonly hostStateDir: string) { this.dir = join(hostStateDir, 'slots'); }

  private lockFile(): string { return join(this.hostStateDir, 'slots.lock'); }

  private leases(): LeaseFile[] {
    if (!existsSync(this.dir)) return [];
    const out: LeaseFile[] = [];
    for (const f of readdirSync(this.dir)) {
      const m = /^slot-(\d+)\.json$/.exec(f);
      if (!m) continue;
      const lease = readJson<LeaseFile>(join(this.dir, f));
      out.push(lease ?? { dataDir: '', slot: Number(m[1]) });
    }
    return out;
  }

  /**
   * A lease is live while its data dir's marker names the slot and either the Berth that
   * prepared it still runs or the data dir still has instances (they outlive their server).
   * A stopped Berth without instances loses its slot; it gets one again when it starts.
   */
  static isLive(lease: LeaseFile, policy: SlotPolicy): boolean {
    if (!lease.dataDir) return false;
    const marker = readJson<SlotMarker>(policy.markerFile(lease.dataDir));
    if (marker?.slot !== lease.slot) return false;
    return (marker.holders ?? []).some((h) => isSameProcess(h.pid, h.start)) || policy.hasState(lease.dataDir);
  }

  /**
   * The slot leased to `dataDir`, leasing one when it has none; every stale lease is
   * reclaimed and dropped on the way. Runs under the host-wide lock.
   */
  async acquire(dataDir: string, policy: SlotPolicy): Promise<number> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return withFileLock(this.lockFile(), async () => {
      // The processes using the slot (normally one server; more while tests share a data dir).
      const mark = (slot: number) => {
        const previous = readJson<SlotMarker>(policy.markerFile(dataDir));
        const others = previous?.slot === slot ? (previous.holders ?? []).filter((h) => h.pid !== process.pid && isSameProcess(h.pid, h.start)) : [];
        const holders = [...others, { pid: process.pid, start: processStartTime(process.pid) ?? '' }];
        writeFileAtomic(policy.markerFile(dataDir), JSON.stringify({ slot, hostStateDir: this.hostStateDir, holders } satisfies SlotMarker) + '\n');
      };
      const leases = this.leases();
      const mine = leases.find((l) => l.dataDir === dataDir && readJson<SlotMarker>(policy.markerFile(dataDir))?.slot === l.slot);
      // Stale leases of other data dirs: wipe what their instances left on the host, then forget them.
      const live = new Set<number>();
      for (const lease of leases) {
        if (lease === mine || SlotLeases.isLive(lease, policy)) { live.add(lease.slot); continue; }
        await policy.reclaim(lease.slot);
        rmSync(join(this.dir, `slot-${lease.slot}.json`), { force: true });
      }
      if (mine) {
        mark(mine.slot);
        return mine.slot;
      }
      for (let n = 0; n < MAX_SLOTS; n++) {
        if (live.has(n) || !(await policy.usable(n))) continue;
        await policy.reclaim(n); // traces without a lease (a crash between marker and lease); usually nothing
        // Marker first: a crash between the two writes leaves a marker without a lease, which
        // the next acquire replaces; never a lease that two data dirs think is theirs.
        mark(n);
        writeFileAtomic(join(this.dir, `slot-${n}.json`), JSON.stringify({ dataDir, slot: n }) + '\n');
        return n;
      }
      throw new Error(`no free Berth slot on this host (${MAX_SLOTS} in use); remove Berth data dirs that are no longer needed`);
    });
  }

  /** Gives the slot back (the caller has removed its host state). */
  async release(dataDir: string, slot: number, markerFile: string): Promise<void> {
    await withFileLock(this.lockFile(), async () => {
      const file = join(this.dir, `slot-${slot}.json`);
      const lease = readJson<LeaseFile>(file);
      if (lease?.dataDir === dataDir) rmSync(file, { force: true });
      rmSync(markerFile, { force: true });
    });
  }

  /** For diagnostics: the data dir holding each slot. */
  list(): LeaseFile[] { return this.leases(); }
}
