// Host binaries the runtime drives, resolved to absolute paths once (conmon execs runc by the
// path it is given, and a clear "not installed" beats an ENOENT at the first container).
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

export interface Binaries { runc: string; conmon: string; skopeo: string; umoci: string; tiniStatic?: string }

export function findBinary(name: string, path = process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'): string | undefined {
  if (name.startsWith('/')) return canExec(name) ? name : undefined;
  for (const dir of path.split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(dir, name);
    if (canExec(p)) return p;
  }
  return undefined;
}

function canExec(p: string): boolean {
  try { accessSync(p, constants.X_OK); return true; } catch { return false; }
}

/** Resolves the required binaries or throws one error naming every missing Debian package. */
export function resolveBinaries(overrides: Partial<Binaries> = {}): Binaries {
  const want: [keyof Binaries, string, string][] = [
    ['runc', overrides.runc ?? 'runc', 'runc'], ['conmon', overrides.conmon ?? 'conmon', 'conmon'],
    ['skopeo', overrides.skopeo ?? 'skopeo', 'skopeo'], ['umoci', overrides.umoci ?? 'umoci', 'umoci'],
  ];
  const found: Partial<Binaries> = {};
  const missing: string[] = [];
  for (const [key, name, pkg] of want) {
    const p = findBinary(name);
    if (p) found[key] = p; else missing.push(pkg);
  }
  if (missing.length) throw new Error(`the container runtime needs ${missing.join(', ')} (apt-get install ${missing.join(' ')}; scripts/setup.sh installs them when run as root)`);
  const tini = findBinary(overrides.tiniStatic ?? 'tini-static');
  if (tini) found.tiniStatic = tini;
  return found as Binaries;
}
