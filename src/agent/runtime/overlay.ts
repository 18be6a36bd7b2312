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

/** Whether `target` is a mount point in this mount namespace. */
export function isMounted(target: string): boolean {
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  const escaped = target.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return mountinfo.split('\n').some((l) => l.split(' ')[4] === escaped);
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
