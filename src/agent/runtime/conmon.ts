// conmon as the per-container shim (Debian's 2.1.6), driven as the research found safe:
//  * fd 3 (_OCI_SYNCPIPE) is a regular FILE opened O_APPEND, not a pipe: 2.1.6 dies on EPIPE,
//    which would leave an unmonitored container if the agent died before conmon wrote to it;
//  * cwd = the persist dir, because conmon also drops its `oom` file in its cwd;
//  * conmon double-forks and outlives the agent; it writes the exit code to <exit dir>/<id>
//    and the container's output to a k8s-file log.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface ConmonParams {
  id: string;
  bundle: string;
  runcBin: string;
  runcRoot: string;
  exitsDir: string;
  persistDir: string;
  socketsDir: string;
  logPath: string;
  pidFile: string;
  conmonPidFile: string;
  /** conmon's own hard cap; the agent rotates well below it (see logs.ts). */
  logSizeMax: number;
  terminal: boolean;
}

export function conmonArgs(p: ConmonParams): string[] {
  return [
    '--api-version', '1', '-c', p.id, '-u', p.id, '-n', p.id, '-r', p.runcBin, '-b', p.bundle,
    '-p', p.pidFile, '-P', p.conmonPidFile, '-l', `k8s-file:${p.logPath}`, '--log-size-max', String(p.logSizeMax),
    '--exit-dir', p.exitsDir, '--persist-dir', p.persistDir, '--socket-dir-path', p.socketsDir,
    '--runtime-arg', '--root', '--runtime-arg', p.runcRoot, '--log-level', 'warn',
    ...(p.terminal ? ['-t'] : []),
  ];
}

/**
 * Spawns conmon detached (own session, no stdio tied to the agent) and returns once the
 * first process exits or has been seen; the result of `runc create` arrives in the sync file.
 */
export function spawnConmon(bin: string, p: ConmonParams, syncFile: string, conmonLog: string): { exited: Promise<number | null> } {
  const syncFd = openSync(syncFile, 'a');
  const logFd = openSync(conmonLog, 'a');
  try {
    const child = spawn(bin, conmonArgs(p), {
      detached: true,
      cwd: p.persistDir,
      stdio: ['ignore', logFd, logFd, syncFd],
      env: { ...process.env, _OCI_SYNCPIPE: '3' },
    });
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(-1));
    });
    child.unref();
    return { exited };
  } finally {
    closeSync(syncFd);
    closeSync(logFd);
  }
}

export interface SyncResult { pid: number; message?: string }

/** The first JSON line conmon wrote to the sync file, if any. */
export function readSync(syncFile: string): SyncResult | undefined {
  let text: string;
  try { text = readFileSync(syncFile, 'utf8'); } catch { return undefined; }
  const nl = text.indexOf('\n');
  if (nl < 0) return undefined;
  try {
    const msg = JSON.parse(text.slice(0, nl)) as { data: number; message?: string };
    return { pid: msg.data, ...(msg.message ? { message: msg.message } : {}) };
  } catch {
    return undefined;
  }
}

/** Alive = exists and is not a zombie (PID 1 here reaps slowly, so a dead conmon lingers as Z). */
export function pidAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

/** Guards against pid reuse: the process must be conmon for this container id. */
export function isConmonFor(pid: number, id: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return /conmon$/.test(argv[0] ?? '') && argv[argv.indexOf('-c') + 1] === id;
  } catch {
    return false;
  }
}

export function readPidFile(path: string): number {
  try { return Number(readFileSync(path, 'utf8').trim()) || 0; } catch { return 0; }
}
