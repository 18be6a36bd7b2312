// What the instance's provider allowed when the instance was launched (the agent's
// environment, set by the fleet) bounds whatever a desired state says is allowed: a forged or
// buggy desired state cannot grant a capability or host access the instance never had.
import type { TaskSpec } from './protocol.js';

export interface LaunchGrant { privilegedCapabilities: readonly string[]; hostAccess: readonly string[] }

export function withinLaunchGrant(task: TaskSpec, grant: LaunchGrant): TaskSpec {
  return {
    ...task,
    allowedPrivilegedCapabilities: task.allowedPrivilegedCapabilities.filter((c) => grant.privilegedCapabilities.includes(c)),
    allowedHostAccess: (task.allowedHostAccess ?? []).filter((k) => grant.hostAccess.includes(k)),
  };
}
