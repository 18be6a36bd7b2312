// Host volumes (`host.sourcePath`): resolved inside the instance's volume area, a filesystem
// of its own that holds nothing of Berth's, never on the instance's own filesystem (where the
// data dir, with the agent's credential and every task's bundle, lives).
//
// `/tmp/x` is `<area>/tmp/x`; like EC2 host paths the area outlives tasks, so two tasks that
// name the same sourcePath share it. Tasks can write the area, so it may hold symlinks a task
// planted: the path is walked one component at a time, a symlink is refused, and the directory
// finally bound is checked (by the shell that stands in it) to be on the area's filesystem, so
// a link swapped in mid-walk cannot point the bind anywhere else. The bind lands on a
// per-task mount point in the agent's own tree, which is what the container spec names.
import { mkdirSync } from 'node:fs';
import { CannotStartContainerError } from './errors.js';
import { CommandError, run } from './exec.js';
import { isMounted } from './overlay.js';

/** The path components of a sourcePath, or why it is refused ('.' and '..' never resolve). */
export function sourcePathComponents(sourcePath: string): { components: string[] } | { problem: string } {
  if (!sourcePath.startsWith('/')) return { problem: `host.sourcePath '${sourcePath}' must be an absolute path` };
  const components = sourcePath.split('/').filter((c) => c !== '');
  if (components.some((c) => c === '.' || c === '..')) return { problem: `host.sourcePath '${sourcePath}' must not contain '.' or '..' components` };
  if (components.length === 0) return { problem: `host.sourcePath '${sourcePath}' names the root; use a path under /var/ or /tmp/` };
  return { components };
}

/**
 * $1 = the area, $2 = the mount point, then the components. `cd -P` into each (made when
 * missing, as Docker does), refusing links and anything off the area's device; then binds the
 * directory the shell stands in ("." is resolved by the kernel from the cwd, not by path).
 */
const STAGE_SCRIPT = `set -e
area=$1 target=$2
shift 2
cd -P -- "$area"
dev=$(stat -c %d .)
for c in "$@"; do
  [ -L "$c" ] && { echo "symlink $c" >&2; exit 3; }
  [ -e "$c" ] || mkdir -m 0755 -- "$c" 2>/dev/null || true
  { [ -L "$c" ] || [ ! -d "$c" ]; } && { if [ -L "$c" ]; then echo "symlink $c" >&2; else echo "notdir $c" >&2; fi; exit 3; }
  cd -P -- "$c"
  [ "$(stat -c %d .)" = "$dev" ] || { echo "escape $c" >&2; exit 3; }
done
exec mount --no-canonicalize --bind . "$target"
`;

/** Binds `<area>/<sourcePath>` on `target` (once: a second container of the task reuses it). */
export async function stageHostVolume(area: string, sourcePath: string, target: string): Promise<void> {
  if (isMounted(target)) return;
  const parsed = sourcePathComponents(sourcePath);
  if ('problem' in parsed) throw new CannotStartContainerError(parsed.problem);
  mkdirSync(target, { recursive: true });
  try {
    await run('/bin/sh', ['-c', STAGE_SCRIPT, 'berth-stage-volume', area, target, ...parsed.components]);
  } catch (e) {
    const m = e instanceof CommandError ? /^(symlink|notdir|escape) (.*)$/m.exec(e.stderr) : null;
    if (!m) throw e;
    const why = m[1] === 'symlink' ? 'is a symbolic link (host volumes never follow links)'
      : m[1] === 'notdir' ? 'is not a directory' : 'leads outside the instance\'s volume area';
    throw new CannotStartContainerError(`host.sourcePath '${sourcePath}': '${m[2]}' ${why}`);
  }
}
