// Whether the Berth named in a data dir's server.json still runs. `kill(pid, 0)` is not
// enough: after a kill -9 the pid may linger as a zombie (its parent has not reaped it) or
// be reused by an unrelated process. A pid is Berth's only while it is not a zombie and its
// start time (from /proc/<pid>/stat) is the one recorded when Berth wrote server.json.
import { readFileSync } from 'node:fs';
import { parseStat } from './domain/proc-stat.js';

export { parseStat, type ProcessStat } from './domain/proc-stat.js';

/** What the check reads about a process (the real /proc, or a test's). */
export interface ProcessView {
  /** The text of /proc/<pid>/stat, or undefined when there is no such process. */
  stat(pid: number): string | undefined;
  /** The NUL-separated command line, or undefined. */
  cmdline(pid: number): string | undefined;
}

export const procView: ProcessView = {
  stat: (pid) => { try { return readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; } },
  cmdline: (pid) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return undefined; } },
};

/** This process's start time, recorded in server.json. */
export function ownStartTime(view: ProcessView = procView): number | undefined {
  const text = view.stat(process.pid);
  return text ? parseStat(text)?.startTime : undefined;
}

export type Liveness = { running: true } | { running: false; why: string };

/** Whether the recorded server (pid, start time) is still that running process. */
export function recordedServer(info: { pid: number; startTime?: number }, view: ProcessView = procView): Liveness {
  const text = view.stat(info.pid);
  if (text === undefined) return { running: false, why: `pid ${info.pid} is gone` };
  const stat = parseStat(text);
  if (!stat) return { running: true };
  if (stat.state === 'Z' || stat.state === 'X') return { running: false, why: `pid ${info.pid} is a dead process not yet reaped by its parent (state ${stat.state})` };
  if (info.startTime !== undefined) {
    return stat.startTime === info.startTime
      ? { running: true }
      : { running: false, why: `pid ${info.pid} now belongs to another process (started at tick ${stat.startTime}, Berth at ${info.startTime})` };
  }
  // A server.json of an older Berth has no start time: judge by the command line.
  const cmd = (view.cmdline(info.pid) ?? '').split('\0').join(' ');
  return /berth|cli\/main\.js/.test(cmd) ? { running: true } : { running: false, why: `pid ${info.pid} is not Berth (${cmd.slice(0, 80) || 'no command line'})` };
}
