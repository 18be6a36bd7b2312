// Bounded filesystems for what containers write: a sparse ext4 image per task (its containers'
// overlay upper/work dirs, its task-scoped volumes and /etc files) and one per instance for
// host volumes. The kernel has no quota support here, but a loop mount is a hard bound that
// costs ~30 ms: a task that fills its image gets ENOSPC alone, never the instance's disk.
//
// `mount -o loop` sets the loop device's autoclear flag, so unmounting (or the instance's mount
// namespace ending) detaches it; the image file is the only thing left to delete.
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run } from './exec.js';
import { isMounted, unmount } from './overlay.js';

export const GiB = 1024 ** 3;
/** Fargate's default ephemeral storage. */
export const DEFAULT_TASK_STORAGE_BYTES = 20 * GiB;
/** ext4 needs a few MiB for its own metadata. */
const MIN_BYTES = 16 * 1024 * 1024;

export interface LoopFilesystem {
  /** The sparse image file (in an agent-only dir). */
  image: string;
  mountPoint: string;
  sizeBytes: number;
}

/** Writes a freshly formatted image of `sizeBytes` at `image`. */
export async function formatImage(image: string, sizeBytes: number): Promise<void> {
  mkdirSync(dirname(image), { recursive: true, mode: 0o700 });
  // Made under a temporary name: a crash half-way never leaves an image that looks whole.
  const tmp = `${image}.new`;
  const fd = openSync(tmp, 'w', 0o600);
  try { ftruncateSync(fd, Math.max(MIN_BYTES, Math.floor(sizeBytes / 4096) * 4096)); } finally { closeSync(fd); }
  // No journal (nothing here must survive a host crash), inode tables left to read as the
  // sparse file's zeros (lazy_itable_init + noinit_itable: never written in the background),
  // no blocks reserved for root (containers run as root anyway).
  await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-O', '^has_journal', '-E', 'lazy_itable_init=1,nodiscard', tmp]);
  renameSync(tmp, image);
}

/**
 * Formatted images of one size, one kept ready ahead: taking it is a rename, so `mkfs` (about
 * half of the ~60 ms a task's storage costs) runs after a task starts, not before.
 */
export class SpareImages {
  private making: Promise<void> | undefined;

  constructor(private readonly dir: string, readonly sizeBytes: number) {
    // Spares of another size (the setting changed) or half-made by an agent that died.
    for (const f of safeList(dir)) if (/^spare-\d+\.img(\.new)?$/.test(f) && f !== `spare-${sizeBytes}.img`) rmSync(join(dir, f), { force: true });
  }

  private get spare(): string { return join(this.dir, `spare-${this.sizeBytes}.img`); }

  /** Puts a formatted image at `image`: the spare when it is ready, else a new one. */
  async take(image: string): Promise<void> {
    try {
      renameSync(this.spare, image);
    } catch {
      await formatImage(image, this.sizeBytes);
    }
    this.replenish();
  }

  /** Makes the spare in the background if there is none. */
  replenish(): void {
    if (this.making || existsSync(this.spare)) return;
    this.making = formatImage(this.spare, this.sizeBytes)
      // Nothing is lost: the next task formats its own image, and fails with the reason if it must.
      .catch(() => undefined)
      .finally(() => { this.making = undefined; });
  }

  /** Resolves once no spare is being made (tests, shutdown). */
  async idle(): Promise<void> { await this.making; }
}

/**
 * Mounts the filesystem, creating its image on first use (with `make`, default a new
 * format). Already mounted (a restarted agent adopting its tasks: the mount lives in the
 * instance's mount namespace) → nothing to do; an image without a mount (the mount was
 * lost) is mounted again with its data.
 */
export async function ensureLoopFilesystem(fs: LoopFilesystem, make: (image: string) => Promise<void> = (i) => formatImage(i, fs.sizeBytes)): Promise<void> {
  if (isMounted(fs.mountPoint)) return;
  mkdirSync(dirname(fs.image), { recursive: true, mode: 0o700 });
  mkdirSync(fs.mountPoint, { recursive: true });
  if (!existsSync(fs.image)) await make(fs.image);
  await run('mount', ['-t', 'ext4', '-o', 'loop,nodev,nosuid,noinit_itable', fs.image, fs.mountPoint]);
}

/** Unmounts (which detaches the loop device) and deletes the image. */
export async function removeLoopFilesystem(fs: LoopFilesystem): Promise<void> {
  await unmount(fs.mountPoint);
  if (isMounted(fs.mountPoint)) throw new Error(`cannot unmount ${fs.mountPoint}`);
  rmSync(fs.image, { force: true });
  rmSync(`${fs.image}.new`, { force: true });
}

function safeList(dir: string): string[] {
  try { return readdirSync(dir); } catch { return []; }
}

/** `BERTH_AGENT_TASK_STORAGE_GIB`-style text → bytes; fractions allowed (tests use a few hundred MiB). */
export function parseStorageGiB(text: string | undefined, fallbackBytes = DEFAULT_TASK_STORAGE_BYTES): number {
  if (text === undefined || text === '') return fallbackBytes;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`task storage must be a positive number of GiB; got '${text}'`);
  return Math.max(MIN_BYTES, Math.round(n * GiB));
}
