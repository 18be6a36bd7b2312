// Per-task files on the instance: the /etc files Docker would generate (hosts, hostname,
// resolv.conf), and the task-scoped volumes (volumes without a host sourcePath), which all the
// task's containers share and which live as long as the task. Both are on the task's own
// storage (containers can write them), which must be mounted first; host volumes are
// host-volumes.ts's.
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
  const dir = layout.taskEtcDir(task.taskId);
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

/** Where each volume of the task is, for its containers to bind: a task-scoped dir or the host volume's mount point. */
export function volumePaths(layout: RuntimeLayout, task: TaskSpec): Record<string, string> {
  return Object.fromEntries(task.volumes.map((v) => [v.name,
    v.hostSourcePath !== undefined ? layout.hostVolumeMount(task.taskId, v.name) : layout.taskVolume(task.taskId, v.name)]));
}

/** Makes the task-scoped volumes (empty dirs on the task's storage). */
export function ensureTaskVolumes(layout: RuntimeLayout, task: TaskSpec): void {
  for (const v of task.volumes) if (v.hostSourcePath === undefined) mkdirSync(layout.taskVolume(task.taskId, v.name), { recursive: true });
}
