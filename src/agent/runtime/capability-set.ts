// The capability set a container gets, computed the way Docker does (moby oci/caps
// TweakCapabilities), then checked against what the capacity provider allows. The control
// plane checks the same rule at placement; the agent checks again so a bug or a forged
// desired state there cannot hand out privileges (defence in depth).
import {
  ALL_CAPABILITIES, DEFAULT_CAPABILITIES, PRIVILEGED_CAPABILITIES, isDefaultCapability, normalizeCapability,
  type Capability,
} from '../../domain/capabilities.js';
import { PRIVILEGED_TAG } from '../../domain/provider-settings.js';
import { ContainerSpecError, PrivilegedCapabilityError } from './errors.js';

export interface CapabilityRequest {
  name: string;
  privileged: boolean;
  capabilitiesAdd: readonly string[];
  capabilitiesDrop: readonly string[];
}

function normalizeList(container: string, list: readonly string[]): (Capability | 'ALL')[] {
  return list.map((c) => {
    if (c.trim().toUpperCase() === 'ALL') return 'ALL';
    const cap = normalizeCapability(c);
    if (!cap) throw new ContainerSpecError(`Container '${container}': unknown Linux capability '${c}'.`);
    return cap;
  });
}

/**
 * Docker's rules: privileged → every capability; add ALL → every capability minus the drops;
 * drop ALL → exactly the adds; otherwise (defaults − drops) ∪ adds. "Every capability" is
 * limited to the agent's own bounding set (`available`), because runc cannot grant more
 * (here CAP_SYS_RESOURCE is missing from the sandbox's bounding set).
 */
export function resolveCapabilities(req: CapabilityRequest, available: readonly Capability[] = ALL_CAPABILITIES): Capability[] {
  const all = ALL_CAPABILITIES.filter((c) => available.includes(c));
  if (req.privileged) return all;
  const add = normalizeList(req.name, req.capabilitiesAdd);
  const drop = normalizeList(req.name, req.capabilitiesDrop);
  let caps: Capability[];
  if (add.includes('ALL')) caps = all.filter((c) => !drop.includes(c));
  else if (drop.includes('ALL')) caps = add.filter((c): c is Capability => c !== 'ALL');
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...(add as Capability[])];
  const unavailable = caps.filter((c) => !available.includes(c));
  // An explicit add the host cannot grant is an error (silently dropping it would run the
  // container with less than it asked for); "ALL" already means "all we can grant".
  if (unavailable.length) {
    throw new ContainerSpecError(
      `Container '${req.name}' asks for ${unavailable.join(', ')}, which this instance's agent does not hold itself (its bounding set lacks it), so no container here can get it.`,
    );
  }
  return ALL_CAPABILITIES.filter((c) => caps.includes(c)); // kernel order, no duplicates
}

/**
 * Refuses a container that would get a capability outside Docker's default set which the
 * provider does not allow, or `privileged` without every privileged capability allowed.
 */
export function checkPrivilegedGate(req: CapabilityRequest, caps: readonly Capability[], allowed: readonly string[]): void {
  const allowedSet = new Set(allowed.map((c) => normalizeCapability(c)).filter(Boolean));
  const needed = req.privileged ? PRIVILEGED_CAPABILITIES : caps.filter((c) => !isDefaultCapability(c));
  const missing = needed.filter((c) => !allowedSet.has(c));
  if (!missing.length) return;
  const msg = req.privileged
    ? `Container '${req.name}' is privileged, which gives every capability, but the capacity provider tag ${PRIVILEGED_TAG} does not allow ${missing.join(', ')}: set ${PRIVILEGED_TAG}=ALL on the capacity provider to run privileged containers.`
    : `Container '${req.name}' needs capability ${missing.join(', ')}, outside Docker's default set; the capacity provider tag ${PRIVILEGED_TAG} must allow it (e.g. ${PRIVILEGED_TAG}=${missing.join('+')}).`;
  throw new PrivilegedCapabilityError(req.name, missing, msg);
}
