// AWS CloudTrail: LookupEvents has no resource type.
import type { ServiceAuthz } from './types.js';

export const cloudtrailAuthz: ServiceAuthz = {
  prefix: 'cloudtrail',
  style: 'json',
  rules: { LookupEvents: {} },
};
