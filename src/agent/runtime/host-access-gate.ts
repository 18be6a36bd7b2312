// The agent's own check of host access (pidMode host, ipcMode host, devices) against what the
// instance's provider allowed, like the capability gate: the control plane refuses at
// RunTask and placement; this catches a bug or a forged desired state there.
import { missingHostAccess, type HostAccess } from '../../domain/host-access.js';
import { HOST_ACCESS_TAG } from '../../domain/provider-settings.js';
import type { ContainerSpec, TaskSpec } from '../protocol.js';
import { HostAccessError } from './errors.js';

export function requestedByContainer(task: TaskSpec, c: ContainerSpec): HostAccess[] {
  const out: HostAccess[] = [];
  if (task.pidMode === 'host') out.push('pidMode:host');
  if (task.ipcMode === 'host') out.push('ipcMode:host');
  if (c.devices?.length) out.push('devices');
  return out;
}

export function checkHostAccessGate(task: TaskSpec, c: ContainerSpec): void {
  const missing = missingHostAccess(requestedByContainer(task, c), task.allowedHostAccess ?? []);
  if (!missing.length) return;
  throw new HostAccessError(c.name, missing,
    `Container '${c.name}' needs host access ${missing.join(', ')}, which reaches beyond its task; the capacity provider tag ${HOST_ACCESS_TAG} must allow it (e.g. ${HOST_ACCESS_TAG}=${missing.join('+')}).`);
}
