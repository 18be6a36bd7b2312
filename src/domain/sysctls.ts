// Which sysctls (ECS systemControls) a task may set: only those the kernel keeps per
// namespace, so a value set for one task changes nothing outside it — Docker's rule
// (moby opts.ValidateSysctl). IPC ones need the task's own IPC namespace, net.* its own
// network namespace (awsvpc; in host mode it would be the instance's).
export type SysctlScope = 'ipc' | 'net';

const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

/** The namespace a sysctl belongs to, or undefined when it is global (not namespaced). */
export function sysctlScope(name: string): SysctlScope | undefined {
  if (IPC_SYSCTLS.has(name) || name.startsWith('fs.mqueue.')) return 'ipc';
  if (name.startsWith('net.') && name.length > 4) return 'net';
  return undefined;
}

/** Why `name` cannot be set for a task with these modes, or undefined when it can. */
export function sysctlProblem(name: string, networkMode: string | undefined, ipcMode: string | undefined): string | undefined {
  if (!/^[a-z0-9_]+(\.[a-zA-Z0-9_/-]+)+$/.test(name)) return `systemControls namespace '${name}' is not a sysctl name (e.g. net.ipv4.ip_forward).`;
  const scope = sysctlScope(name);
  if (!scope) {
    return `systemControls namespace '${name}' is not a namespaced sysctl, so setting it would change the whole instance; allowed are kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.shmall, kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced, fs.mqueue.* and (in awsvpc network mode) net.*.`;
  }
  // Only awsvpc gives a task a network namespace of its own (undefined: the managed-instances default, awsvpc).
  if (scope === 'net' && networkMode !== undefined && networkMode !== 'awsvpc') {
    return `systemControls namespace '${name}' cannot be set in host network mode: the task shares the instance's network namespace. Use awsvpc network mode, which gives the task its own.`;
  }
  if (scope === 'ipc' && ipcMode === 'host') {
    return `systemControls namespace '${name}' cannot be set with ipcMode host: the task shares the instance's IPC namespace.`;
  }
  return undefined;
}
