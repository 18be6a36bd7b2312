// Settings AWS has no API field for live as reserved tags on the capacity provider, so
// unmodified AWS clients can set them:
//   berth:single-task-mode          = enabled | disabled   (default disabled)
//   berth:privileged-capabilities   = ALL | NONE | CAP_X+CAP_Y (also space-separated)
//   berth:disruption-budget         = N | N%   (instances draining at once; default 10%, at least 1)
//   berth:host-access               = NONE | ALL | pidMode:host+ipcMode:host+devices (also space-separated)
import { normalizeCapability, isDefaultCapability, PRIVILEGED_CAPABILITIES, type Capability } from './capabilities.js';
import { HOST_ACCESS_KINDS, type HostAccess } from './host-access.js';

export const SINGLE_TASK_TAG = 'berth:single-task-mode';
export const PRIVILEGED_TAG = 'berth:privileged-capabilities';
/** How many instances may drain at once for replacement: `N` or `N%` of the provider's (default 10%). */
export const DISRUPTION_BUDGET_TAG = 'berth:disruption-budget';
/** Which kinds of host access (pidMode host, ipcMode host, devices) tasks on this provider may have. */
export const HOST_ACCESS_TAG = 'berth:host-access';
export const RESERVED_PREFIX = 'berth:';

export interface ProviderSettings {
  singleTaskMode: boolean;
  /** Privileged capabilities tasks on this provider may add (never the default set). */
  privilegedCapabilities: Capability[];
  /** Host access tasks on this provider may have (none by default). */
  hostAccess: HostAccess[];
}

export interface TagLike { key: string; value?: string }

export class ProviderSettingError extends Error {}

export function parseProviderSettings(tags: TagLike[]): ProviderSettings {
  const settings: ProviderSettings = { singleTaskMode: false, privilegedCapabilities: [], hostAccess: [] };
  for (const { key, value = '' } of tags) {
    if (!key.startsWith(RESERVED_PREFIX)) continue;
    if (key === SINGLE_TASK_TAG) {
      const v = value.trim().toLowerCase();
      if (v !== 'enabled' && v !== 'disabled') {
        throw new ProviderSettingError(`Tag ${SINGLE_TASK_TAG} must be 'enabled' or 'disabled'; got '${value}'.`);
      }
      settings.singleTaskMode = v === 'enabled';
    } else if (key === PRIVILEGED_TAG) {
      settings.privilegedCapabilities = parseCapabilityList(value);
    } else if (key === HOST_ACCESS_TAG) {
      settings.hostAccess = parseHostAccessList(value);
    } else if (key === DISRUPTION_BUDGET_TAG) {
      if (!/^([1-9]\d{0,5}|([1-9]\d?|100)%)$/.test(value.trim())) {
        throw new ProviderSettingError(`Tag ${DISRUPTION_BUDGET_TAG} must be a number of instances (e.g. 2) or a percentage from 1% to 100% (e.g. 10%); got '${value}'.`);
      }
    } else {
      throw new ProviderSettingError(`Unknown reserved tag key '${key}'. Berth's capacity provider settings are ${SINGLE_TASK_TAG}, ${PRIVILEGED_TAG}, ${HOST_ACCESS_TAG} and ${DISRUPTION_BUDGET_TAG}.`);
    }
  }
  return settings;
}

function parseCapabilityList(value: string): Capability[] {
  const words = value.split(/[\s+]+/).filter(Boolean);
  if (words.length === 1 && words[0]!.toUpperCase() === 'ALL') return [...PRIVILEGED_CAPABILITIES];
  if (words.length === 0 || (words.length === 1 && words[0]!.toUpperCase() === 'NONE')) return [];
  const caps = new Set<Capability>();
  for (const w of words) {
    const cap = normalizeCapability(w);
    if (!cap) {
      throw new ProviderSettingError(`Unknown Linux capability '${w}' in tag ${PRIVILEGED_TAG}. Use names such as CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON, separated by '+' or spaces, or ALL.`);
    }
    if (!isDefaultCapability(cap)) caps.add(cap);
  }
  return [...caps].sort();
}

function parseHostAccessList(value: string): HostAccess[] {
  const words = value.split(/[\s+]+/).filter(Boolean);
  if (words.length === 1 && words[0]!.toUpperCase() === 'ALL') return [...HOST_ACCESS_KINDS];
  if (words.length === 0 || (words.length === 1 && words[0]!.toUpperCase() === 'NONE')) return [];
  const out = new Set<HostAccess>();
  for (const w of words) {
    const kind = HOST_ACCESS_KINDS.find((k) => k.toLowerCase() === w.toLowerCase());
    if (!kind) {
      throw new ProviderSettingError(`Unknown host access '${w}' in tag ${HOST_ACCESS_TAG}. Use ${HOST_ACCESS_KINDS.join(', ')}, separated by '+' or spaces, or ALL or NONE.`);
    }
    out.add(kind);
  }
  return HOST_ACCESS_KINDS.filter((k) => out.has(k));
}
