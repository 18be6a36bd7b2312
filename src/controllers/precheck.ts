// Whether a new task could ever run on its capacity provider: RunTask answers a task that
// fits no instance type the provider may launch with a failure instead of a task that would
// wait for ever. Pure over the records given (the caller reads them in its transaction).
import { AGENT_CAPABILITIES } from '../agent/attributes.js';
import { parseProviderSettings } from '../domain/provider-settings.js';
import type { Architecture } from '../domain/instance-types.js';
import type { TaskPrecheck } from '../ecs/tasks.js';
import { planScaleOut, selectableTypes } from '../placement/index.js';
import { taskRequest } from './cluster-snapshot.js';

export function taskPrecheck(hostArch: Architecture): TaskPrecheck {
  return (t, td, p) => {
    const template = p.managedInstancesProvider.instanceLaunchTemplate;
    const settings = parseProviderSettings(p.tags);
    const plan = planScaleOut({
      provider: {
        name: p.name, types: selectableTypes(template.instanceRequirements, hostArch),
        subnets: (template.networkConfiguration.subnets ?? []).map((subnetId) => ({ subnetId, availabilityZone: 'any' })),
        singleTaskMode: settings.singleTaskMode, privilegedCapabilities: settings.privilegedCapabilities, hostAccess: settings.hostAccess,
        fips: template.fipsEnabled === true, attributes: AGENT_CAPABILITIES.map((name) => ({ name })),
      },
      pending: [taskRequest(t, td.body, template.fipsEnabled === true)],
      maxLaunches: 1,
    });
    const u = plan.unplaceable[0];
    return u && { reason: u.reason, detail: u.message };
  };
}
