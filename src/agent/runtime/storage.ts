// Bounded filesystems for what containers write: a sparse ext4 image per task (its containers'
// overlay upper/work dirs, its task-scoped volumes and /etc files) and one per instance for
// host volumes. The kernel has no quota support here, but a loop mount is a hard bound that
// costs ~30 ms: a task that fills its image gets ENOSPC alone, never the instance's disk.
//
// `mount -o loop` sets the loop device's autoclear flag, so unmounting (or the instance's mount
// namespace ending) detaches it; the image file is the only thing left to delete.
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
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

/**
 * Mounts the filesystem, creating its image on first use. Already mounted (a restarted agent
 * adopting its tasks: the mount lives in the instance's mount namespace) → nothing to do; an
 * image without a mount (the mount was lost) is mounted again with its data.
 */
export async function ensureLoopFilesystem(fs: LoopFilesystem): Promise<void> {
  if (isMounted(fs.mountPoint)) return;
  mkdirSync(dirname(fs.image), { recursive: true, mode: 0o700 });
  mkdirSync(fs.mountPoint, { recursive: true });
  if (!existsSync(fs.image)) {
    // Made under a temporary name: a crash half-way never leaves an image that looks whole.
    const tmp = `${fs.image}.new`;
    const fd = openSync(tmp, 'w', 0o600);
    try { ftruncateSync(fd, Math.max(MIN_BYTES, Math.floor(fs.sizeBytes / 4096) * 4096)); } finally { closeSync(fd); }
    // No journal (nothing here must survive a host crash), inode tables left to read as the
    // sparse file's zeros (lazy_itable_init + noinit_itable: never written in the background),
    // no blocks reserved for root (containers run as root anyway).
    await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-O', '^has_journal', '-E', 'lazy_itable_init=1,nodiscard', tmp]);
    renameSync(tmp, fs.image);
  }
  await run('mount', ['-t', 'ext4', '-o', 'loop,nodev,nosuid,noinit_itable', fs.image, fs.mountPoint]);
}

/** Unmounts (which detaches the loop device) and deletes the image. */
export async function removeLoopFilesystem(fs: LoopFilesystem): Promise<void> {
  await unmount(fs.mountPoint);
  if (isMounted(fs.mountPoint)) throw new Error(`cannot unmount ${fs.mountPoint}`);
  rmSync(fs.image, { force: true });
  rmSync(`${fs.image}.new`, { force: true });
}

/** `BERTH_AGENT_TASK_STORAGE_GIB`-style text → bytes; fractions allowed (tests use a few hundred MiB). */
export function parseStorageGiB(text: string | undefined, fallbackBytes = DEFAULT_TASK_STORAGE_BYTES): number {
  if (text === undefined || text === '') return fallbackBytes;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`task storage must be a positive number of GiB; got '${text}'`);
  return Math.max(MIN_BYTES, Math.round(n * GiB));
}
