// Berth's own administration API (platform versions, disruption budgets, the clock, lifecycle
// events): `berth:<Operation>` on `*`. Operators hold berth:* (iam/operator.ts); customers'
// users need it granted; an account's root may call them like everything else.
import type { ServiceAuthz } from './types.js';

export const berthAuthz: ServiceAuthz = {
  prefix: 'berth',
  style: 'json',
  rules: {
    PublishPlatformVersion: {},
    ListPlatformVersions: {},
    GetClock: {},
    AdvanceClock: {},
    PutDisruptionBudget: {},
    ListLifecycleEvents: {},
    // GET /metrics (SigV4-signed); the API server also limits it to the administrator's and operators' accounts.
    GetMetrics: {},
  },
};
