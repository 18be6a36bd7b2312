// Which catalog types a managed-instances provider may launch (EC2 attribute-based
// selection over InstanceRequirementsRequest), cheapest first.
//
// Without instanceRequirements (ECS: "the most cost-optimised general-purpose types, never
// nano/micro, more than 1 vCPU"): current-generation M families, not burstable, not bare
// metal, more than one vCPU, and then only the cost-effective ones: a type is dropped when
// another type offers at least its vCPUs, memory and network interfaces for no more money
// (m5.large and m6a.large go, m5a.large stays). With instanceRequirements, every type the
// requirements allow is selectable (the scale-out planner still prefers the cheap ones).
// burstablePerformance and bareMetal default to "excluded" as on EC2, except that an
// allowedInstanceTypes list decides on its own (allowing t3.* means t3 types are wanted).
import { INSTANCE_TYPES, matchesTypePattern, type Architecture, type InstanceType } from '../domain/instance-types.js';
import type { InstanceRequirements } from '../domain/instance-requirements.js';

/** Memory the instance keeps for itself (agent, OS); tasks get the rest. */
export const RESERVED_MEMORY_MIB = 256;

export function registeredMemory(t: InstanceType): number {
  return t.memoryMiB - RESERVED_MEMORY_MIB;
}

export function registeredCpu(t: InstanceType): number {
  return t.vcpu * 1024;
}

/** Network interfaces an instance of the type can give awsvpc tasks (one is its own). */
export function taskEnis(t: InstanceType): number {
  return Math.max(0, t.maxNetworkInterfaces - 1);
}

const GENERAL_PURPOSE = /^m\d/;

function inRange(v: number, r: { min?: number; max?: number } | undefined): boolean {
  return !r || ((r.min === undefined || v >= r.min) && (r.max === undefined || v <= r.max));
}

function allowedByRequirements(t: InstanceType, req: InstanceRequirements): boolean {
  if (!inRange(t.vcpu, req.vCpuCount) || !inRange(t.memoryMiB, req.memoryMiB)) return false;
  if (!inRange(t.memoryMiB / 1024 / t.vcpu, req.memoryGiBPerVCpu)) return false;
  if (req.cpuManufacturers?.length && !req.cpuManufacturers.includes(t.manufacturer)) return false;
  const allowList = req.allowedInstanceTypes?.length ? req.allowedInstanceTypes : undefined;
  if (allowList && !allowList.some((p) => matchesTypePattern(t.name, p))) return false;
  if (req.excludedInstanceTypes?.some((p) => matchesTypePattern(t.name, p))) return false;
  if (req.instanceGenerations?.length && !req.instanceGenerations.includes(t.generation)) return false;
  const burst = req.burstablePerformance ?? (allowList ? 'included' : 'excluded');
  if ((burst === 'excluded' && t.burstable) || (burst === 'required' && !t.burstable)) return false;
  const metal = req.bareMetal ?? (allowList ? 'included' : 'excluded');
  if ((metal === 'excluded' && t.bareMetal) || (metal === 'required' && !t.bareMetal)) return false;
  if (!inRange(t.maxNetworkInterfaces, req.networkInterfaceCount)) return false;
  if (req.acceleratorCount?.min !== undefined && req.acceleratorCount.min > 0) return false;
  return true;
}

/** True when `a` gives at least what `b` gives (vCPU, memory, ENIs) for no more money. */
function dominates(a: InstanceType, b: InstanceType): boolean {
  return a.architecture === b.architecture && a.vcpu >= b.vcpu && a.memoryMiB >= b.memoryMiB
    && a.maxNetworkInterfaces >= b.maxNetworkInterfaces && a.pricePerHour <= b.pricePerHour;
}

/**
 * Drops every type another one dominates; of types that are equal in everything, the first in
 * `types` order stays. Keeps the input order.
 */
export function costEffective(types: readonly InstanceType[]): InstanceType[] {
  return types.filter((b, j) => !types.some((a, i) => i !== j && dominates(a, b)
    && (!dominates(b, a) || i < j)));
}

/**
 * Types a provider may launch on a host of `hostArch`, cheapest first. Without requirements:
 * the cost-effective general-purpose types, never nano/micro, more than one vCPU.
 */
export function selectableTypes(req: InstanceRequirements | undefined, hostArch: Architecture): InstanceType[] {
  const ofArch = INSTANCE_TYPES.filter((t) => t.architecture === hostArch);
  if (!req) {
    return costEffective(ofArch.filter((t) => GENERAL_PURPOSE.test(t.family) && t.generation === 'current' && !t.burstable
      && !t.bareMetal && t.vcpu > 1 && t.size !== 'nano' && t.size !== 'micro'));
  }
  return ofArch.filter((t) => allowedByRequirements(t, req));
}

/** The cheapest type that can hold `cpu` units and `memory` MiB (and `enis` task interfaces), if any. */
export function cheapestFitting(types: readonly InstanceType[], cpu: number, memory: number, enis = 0): InstanceType | undefined {
  return types.find((t) => registeredCpu(t) >= cpu && registeredMemory(t) >= memory && taskEnis(t) >= enis);
}
