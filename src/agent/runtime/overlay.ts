// Per-container root filesystems: an overlay whose lower layer is the image's unpacked rootfs
// (shared, never written) and whose upper/work dirs are the container's own, in the data dir.
import { readFileSync } from 'node:fs';
import { run } from './exec.js';

export async function mountOverlay(lower: string, upper: string, work: string, target: string): Promise<void> {
  for (const p of [lower, upper, work]) {
    // ',' and ':' separate overlay options and lower layers; our own paths never contain them.
    if (/[,:]/.test(p)) throw new Error(`overlay paths cannot contain ',' or ':': ${p}`);
  }
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, target]);
}

/** Mount points in this mount namespace (mountinfo's octal escapes undone). */
function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m)
    .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/** Whether `target` is a mount point in this mount namespace. */
export function isMounted(target: string): boolean {
  return mountPoints().includes(target);
}

/**
 * Unmounts every mount at or below `dir`, deepest first, so that deleting `dir` afterwards
 * can never recurse into a mounted filesystem (a host volume shared with other tasks).
 */
export async function unmountAllUnder(dir: string): Promise<void> {
  const below = () => mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`));
  for (const m of [...new Set(below())].sort((a, b) => b.length - a.length)) await unmount(m);
  const left = below();
  if (left.length) throw new Error(`still mounted under ${dir}: ${left.join(', ')}`);
}

export async function unmount(target: string): Promise<void> {
  if (!isMounted(target)) return;
  try {
    await run('umount', [target]);
  } catch {
    // Still busy (a process holding a cwd there): detach it now, the kernel frees it later.
    await run('umount', ['-l', target]);
  }
}
