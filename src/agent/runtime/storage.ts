// Bounded filesystems for what containers write: a sparse ext4 image per task (its containers'
// overlay upper/work dirs, its task-scoped volumes and /etc files) and one per instance for
// host volumes. The kernel has no quota support here, but a loop mount is a hard bound that
// costs ~30 ms: a task that fills its image gets ENOSPC alone, never the instance's disk.
//
// `mount -o loop` sets the loop device's autoclear flag, so unmounting (or the instance's mount
// namespace ending) detaches it; the image file is the only thing left to delete.
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
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
  try { ftruncateSync(fd, imageBytes(sizeBytes)); } finally { closeSync(fd); }
  // No journal (nothing here must survive a host crash), inode tables left to read as the
  // sparse file's zeros (lazy_itable_init + noinit_itable: never written in the background),
  // no blocks reserved for root (containers run as root anyway).
  await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-O', '^has_journal', '-E', 'lazy_itable_init=1,nodiscard', tmp]);
  renameSync(tmp, image);
}

/**
 * One task filesystem kept formatted and mounted ahead (`storage/spare.img` on
 * `storage/spare.mnt`): a task takes it with a rename and a bind mount, so `mkfs` and the loop
 * mount (~60 ms together, most of a task storage's cost) run behind the task start.
 */
export class SpareFilesystem {
  private making: Promise<void> | undefined;

  constructor(private readonly dir: string, readonly sizeBytes: number) {}

  private get image(): string { return join(this.dir, 'spare.img'); }
  private get mountPoint(): string { return join(this.dir, 'spare.mnt'); }
  private get exactBytes(): number { return imageBytes(this.sizeBytes); }

  /**
   * Gives `fs` (whose image does not exist yet) a mounted filesystem: the spare when one is
   * ready, else one made now. Then makes the next spare in the background.
   */
  async take(fs: LoopFilesystem): Promise<void> {
    await this.making;
    if (fs.sizeBytes === this.sizeBytes && this.ready()) {
      // The loop device follows the file: renamed, it is the task's image.
      renameSync(this.image, fs.image);
      mkdirSync(fs.mountPoint, { recursive: true });
      // A bind keeps the mount's nodev,nosuid; the spare's own mount point then goes.
      await run('mount', ['--bind', this.mountPoint, fs.mountPoint]);
      await unmount(this.mountPoint);
    } else {
      await formatImage(fs.image, fs.sizeBytes);
      await mountImage(fs);
    }
    this.replenish();
  }

  private ready(): boolean {
    try { return statSync(this.image).size === this.exactBytes && isMounted(this.mountPoint); } catch { return false; }
  }

  /** Makes the spare (in the background) unless one is ready or being made. */
  replenish(): void {
    if (this.making || this.ready()) return;
    this.making = (async () => {
      // A spare of another size (the setting changed), or one an agent died while taking.
      await unmount(this.mountPoint);
      if (existsSync(this.image) && statSync(this.image).size !== this.exactBytes) rmSync(this.image, { force: true });
      if (!existsSync(this.image)) await formatImage(this.image, this.sizeBytes);
      await mountImage({ image: this.image, mountPoint: this.mountPoint, sizeBytes: this.sizeBytes });
    })()
      // Nothing is lost: the next task makes its own filesystem, and fails with the reason if it must.
      .catch(() => undefined)
      .finally(() => { this.making = undefined; });
  }

  /** Resolves once no spare is being made (tests). */
  async idle(): Promise<void> { await this.making; }

  /** Unmounts and deletes the spare (the instance's end does the same; tests call it). */
  async remove(): Promise<void> {
    await this.making;
    await unmount(this.mountPoint);
    rmSync(this.image, { force: true });
  }
}

/**
 * Mounts the filesystem, creating it on first use (from `spare` when given). Already mounted
 * (a restarted agent adopting its tasks: the mount lives in the instance's mount namespace)
 * → nothing to do; an image without a mount (the mount was lost) is mounted again with its data.
 */
export async function ensureLoopFilesystem(fs: LoopFilesystem, spare?: SpareFilesystem): Promise<void> {
  if (isMounted(fs.mountPoint)) return;
  mkdirSync(dirname(fs.image), { recursive: true, mode: 0o700 });
  // An agent that died while taking the spare left this image still mounted as the spare:
  // the spare's set-up unmounts that first, and an image is never mounted twice.
  await spare?.idle();
  if (existsSync(fs.image)) return mountImage(fs);
  if (spare) return spare.take(fs);
  await formatImage(fs.image, fs.sizeBytes);
  await mountImage(fs);
}

/** Unmounts (which detaches the loop device) and deletes the image. */
export async function removeLoopFilesystem(fs: LoopFilesystem): Promise<void> {
  await unmount(fs.mountPoint);
  if (isMounted(fs.mountPoint)) throw new Error(`cannot unmount ${fs.mountPoint}`);
  rmSync(fs.image, { force: true });
  rmSync(`${fs.image}.new`, { force: true });
}

async function mountImage(fs: LoopFilesystem): Promise<void> {
  mkdirSync(fs.mountPoint, { recursive: true });
  await run('mount', ['-t', 'ext4', '-o', 'loop,nodev,nosuid,noinit_itable', fs.image, fs.mountPoint]);
}

const imageBytes = (sizeBytes: number) => Math.max(MIN_BYTES, Math.floor(sizeBytes / 4096) * 4096);

/** `BERTH_AGENT_TASK_STORAGE_GIB`-style text → bytes; fractions allowed (tests use a few hundred MiB). */
export function parseStorageGiB(text: string | undefined, fallbackBytes = DEFAULT_TASK_STORAGE_BYTES): number {
  if (text === undefined || text === '') return fallbackBytes;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`task storage must be a positive number of GiB; got '${text}'`);
  return Math.max(MIN_BYTES, Math.round(n * GiB));
}
