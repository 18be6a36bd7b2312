// What an instance costs in memory, read from /proc on the host: the agent's node process
// (cmdline runs agent/main.js, environ has BERTH_INSTANCE_ID=<id>) and one conmon per
// container (spawned by that agent, so it inherited the same environment).
import { readFileSync, readdirSync } from 'node:fs';
import { basename } from 'node:path';

function argv(pid: string): string[] {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean); } catch { return []; }
}

function hasEnv(pid: string, entry: string): boolean {
  try { return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(entry); } catch { return false; }
}

/** VmRSS in bytes; undefined once the process is gone. */
export function rssBytes(pid: number): number | undefined {
  return memory(pid)?.rss;
}

/**
 * RSS and its parts (bytes): anonymous memory (the process's own heap and stacks) and file
 * pages (for node: mostly its own binary, shared with every other node process).
 */
export interface Memory { rss: number; anon: number; file: number }
export function memory(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const rss = kb('VmRSS');
    return Number.isFinite(rss) ? { rss, anon: kb('RssAnon'), file: kb('RssFile') } : undefined;
  } catch { return undefined; }
}

/**
 * The agent's node process of an instance. The launcher, tini and the supervisor shell carry
 * agent/main.js in their argv too; only the process whose argv[0] is node is the agent.
 */
export function agentPid(instanceId: string): number | undefined {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const a = argv(p);
    if (a.length < 2 || !/^node(js)?$/.test(basename(a[0]!)) || !a.some((x) => x.endsWith('agent/main.js'))) continue;
    if (hasEnv(p, `BERTH_INSTANCE_ID=${instanceId}`)) return Number(p);
  }
  return undefined;
}

/** Pids of the conmon processes of an instance's containers. */
export function conmonPids(instanceId: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const a = argv(p);
    if (a.length === 0 || basename(a[0]!) !== 'conmon') continue;
    if (hasEnv(p, `BERTH_INSTANCE_ID=${instanceId}`)) out.push(Number(p));
  }
  return out;
}

/** Peak and last RSS of a pid, sampled on a timer (cheap: one small /proc read). */
export class RssSampler {
  peak = 0;
  last = 0;
  samples = 0;
  /** The sample with the highest RSS. */
  peakDetail: Memory | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pid: () => number | undefined, everyMs = 100) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  sample(): number | undefined {
    const pid = this.pid();
    const m = pid === undefined ? undefined : memory(pid);
    if (m === undefined) return undefined;
    this.last = m.rss;
    this.samples++;
    if (m.rss > this.peak) { this.peak = m.rss; this.peakDetail = m; }
    return m.rss;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
