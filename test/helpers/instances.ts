// Finding an instance's processes on the host, for tests that kill or freeze them.
import { readFileSync, readdirSync } from 'node:fs';

/**
 * Host pids of an instance's agent: node running agent/main.js with the instance's id in its
 * environment. (The instance's init and supervisor carry the same argv words and environment.)
 */
export function agentPids(instanceId: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (argv[0] !== process.execPath || !argv.some((a) => a.endsWith('agent/main.js'))) continue;
      if (readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`BERTH_INSTANCE_ID=${instanceId}`)) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}
