// Host access a task can ask for that reaches beyond its own sandbox: the instance's PID or
// IPC namespace, or a device node of the instance. Like a capability outside Docker's
// default set, each kind needs its capacity provider's explicit opt-in (the
// berth:host-access tag); the control plane checks at RunTask/placement and the agent
// checks again before it builds a container.

export const HOST_ACCESS_KINDS = ['pidMode:host', 'ipcMode:host', 'devices'] as const;
export type HostAccess = (typeof HOST_ACCESS_KINDS)[number];

export function isHostAccess(word: string): word is HostAccess {
  return (HOST_ACCESS_KINDS as readonly string[]).includes(word);
}

/** What a task definition (its stored JSON body) asks for, in HOST_ACCESS_KINDS order. */
export function requestedHostAccess(td: Record<string, any>): HostAccess[] {
  const out = new Set<HostAccess>();
  if (td.pidMode === 'host') out.add('pidMode:host');
  if (td.ipcMode === 'host') out.add('ipcMode:host');
  for (const c of td.containerDefinitions ?? []) if (c.linuxParameters?.devices?.length) out.add('devices');
  return HOST_ACCESS_KINDS.filter((k) => out.has(k));
}

/** The kinds of `requested` that `allowed` does not grant. */
export function missingHostAccess(requested: readonly string[], allowed: readonly string[]): string[] {
  return requested.filter((k) => !allowed.includes(k));
}
