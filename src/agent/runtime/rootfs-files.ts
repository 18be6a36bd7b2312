// Reading a file inside an image's rootfs without ever leaving it: images are untrusted, and
// an /etc/passwd that is a symlink to /etc/shadow (absolute or ../..) must resolve inside the
// rootfs, as if chrooted — the approach of filepath-securejoin, which runc and Docker use.
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';

const MAX_LINKS = 40;

/** Resolves `path` (absolute inside the container) to a host path under `root`, chroot-style. */
export function resolveInRoot(root: string, path: string): string {
  let pending = posix.normalize(`/${path}`).split('/').filter(Boolean);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') { resolved.pop(); continue; }
    const host = posix.join(root, ...resolved, part);
    let st;
    try { st = lstatSync(host); } catch { resolved.push(part); continue; }
    if (!st.isSymbolicLink()) { resolved.push(part); continue; }
    if (++links > MAX_LINKS) throw new Error(`too many symlinks resolving ${path} in the image`);
    const target = readlinkSync(host);
    if (target.startsWith('/')) resolved.length = 0; // absolute links are relative to the rootfs
    pending = [...target.split('/').filter(Boolean), ...pending];
  }
  return posix.join(root, ...resolved);
}

/** The file's text, or '' when it does not exist in the image. */
export function readFileInRoot(root: string, path: string): string {
  try { return readFileSync(resolveInRoot(root, path), 'utf8'); } catch { return ''; }
}
