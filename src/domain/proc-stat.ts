// /proc/<pid>/stat, read the same way wherever Berth tells a live process from a dead or
// reused pid (the server's pid file, instance processes, slot leases). Pure.

export interface ProcessStat { state: string; startTime: number }

/** Parses /proc/<pid>/stat: `pid (comm) state ppid …`; the comm may hold spaces and parentheses. */
export function parseStat(text: string): ProcessStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).trim().split(/\s+/);
  // Field 3 is the state, field 22 the start time (clock ticks after boot).
  const state = fields[0];
  const startTime = Number(fields[19]);
  if (!state || !Number.isFinite(startTime)) return undefined;
  return { state, startTime };
}
