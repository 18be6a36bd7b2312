// Finding an instance's processes on the host, for tests that kill or freeze them.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

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

/** The agent itself among `agentPids`: the one inside the instance's PID namespace. */
export function agentPid(instanceId: string): number {
  const ours = readlinkSync('/proc/self/ns/pid');
  const pid = agentPids(instanceId).find((p) => {
    try { return readlinkSync(`/proc/${p}/ns/pid`) !== ours; } catch { return false; }
  });
  if (pid === undefined) throw new Error(`no agent process for ${instanceId}`);
  return pid;
}

/** The host pid of an instance's init (tini, PID 1 of the instance), found by its cgroup. */
export function instanceInit(ec2InstanceId: string): number | undefined {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).find((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('/usr/bin/tini') && readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(`/berth/${ec2InstanceId}`);
    } catch { return false; }
  });
}
