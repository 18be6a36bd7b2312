// Amazon EC2 (instance event windows and DescribeInstances), after "Actions, resources, and
// condition keys for Amazon EC2": event windows are arn:…:ec2:<region>:<account>:instance-event-window/<id>;
// Describe* actions have no resource type.
import { sk } from '../ecs/common.js';
import { regionalArn, requestTags, type Args, type Check, type ServiceAuthz } from './types.js';

interface Ec2Tag { Key: string; Value?: string }

function windowCheck(a: Args, id: string): Check {
  // Tags of the window record (ec2/index.ts keeps windows as kind `event-window`).
  const rec = a.env.store?.get<{ Tags?: Ec2Tag[] }>('event-window', sk(a.ctx.scope), id);
  const tags = Object.create(null) as Record<string, string>;
  for (const t of rec?.Tags ?? []) tags[t.Key] = t.Value ?? '';
  return { resource: regionalArn(a.ctx, 'ec2', `instance-event-window/${id}`), tags };
}

function specTags(specs: { ResourceType?: string; Tags?: Ec2Tag[] }[] | undefined): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (const s of specs ?? []) for (const t of s.Tags ?? []) out[t.Key] = t.Value ?? '';
  return out;
}

export const ec2Authz: ServiceAuthz = {
  prefix: 'ec2',
  style: 'ec2',
  rules: {
    CreateInstanceEventWindow: {
      resources: (a) => [{ resource: regionalArn(a.ctx, 'ec2', 'instance-event-window/*') }],
      keys: (a) => requestTags(specTags(a.input.TagSpecifications)),
    },
    DescribeInstanceEventWindows: {},
    ModifyInstanceEventWindow: { resources: (a) => [windowCheck(a, a.input.InstanceEventWindowId)] },
    DeleteInstanceEventWindow: { resources: (a) => [windowCheck(a, a.input.InstanceEventWindowId)] },
    AssociateInstanceEventWindow: { resources: (a) => [windowCheck(a, a.input.InstanceEventWindowId)] },
    DisassociateInstanceEventWindow: { resources: (a) => [windowCheck(a, a.input.InstanceEventWindowId)] },
    DescribeInstances: {},
  },
};
