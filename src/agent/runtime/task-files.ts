// Per-task files on the instance: the /etc files Docker would generate (hosts, hostname,
// resolv.conf), and the task-scoped volumes (volumes without a host sourcePath), which all the
// task's containers share and which live as long as the task.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskSpec } from '../protocol.js';
import type { RuntimeLayout } from './layout.js';

export interface EtcFiles { hosts: string; hostname: string; resolvConf?: string }

export function hostsFileText(hostname: string, ipv4?: string): string {
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    ...(ipv4 ? [`${ipv4}\t${hostname}`] : []),
    '',
  ].join('\n');
}

/** Writes the task's /etc files once (a second container of the task reuses them). */
export function ensureEtcFiles(layout: RuntimeLayout, task: TaskSpec, hostname: string, instanceFiles: { hosts: string; resolvConf: string }): EtcFiles {
  const dir = join(layout.taskDir(task.taskId), 'etc');
  mkdirSync(dir, { recursive: true });
  const files: EtcFiles = { hosts: join(dir, 'hosts'), hostname: join(dir, 'hostname') };
  if (!existsSync(files.hosts)) {
    // host mode shares the instance's network, so it gets the instance's hosts file, as in Docker.
    if (task.networkMode === 'host' && existsSync(instanceFiles.hosts)) copyFileSync(instanceFiles.hosts, files.hosts);
    else writeFileSync(files.hosts, hostsFileText(hostname, task.network?.ipv4Address));
  }
  if (!existsSync(files.hostname)) writeFileSync(files.hostname, `${hostname}\n`);
  const resolv = join(dir, 'resolv.conf');
  if (!existsSync(resolv) && existsSync(instanceFiles.resolvConf)) copyFileSync(instanceFiles.resolvConf, resolv);
  if (existsSync(resolv)) files.resolvConf = resolv;
  return files;
}

/** Host path of every task volume: its sourcePath (created if missing, as Docker does) or a task-scoped dir. */
export function ensureVolumes(layout: RuntimeLayout, task: TaskSpec): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of task.volumes) {
    const path = v.hostSourcePath ?? layout.taskVolume(task.taskId, v.name);
    mkdirSync(path, { recursive: true });
    out[v.name] = path;
  }
  return out;
}
