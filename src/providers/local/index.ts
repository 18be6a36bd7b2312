// Public surface of the local instance provider.
export { LocalInstanceProvider, type LaunchStep, type LocalProviderOptions } from './provider.js';
export { slotNetwork, MAX_SLOTS, type SlotNetwork } from './host-lease.js';
export { limitsFor, type CgroupLimits } from './cgroups.js';
