// Which catalog types a managed-instances provider may launch (EC2 attribute-based
// selection over InstanceRequirementsRequest), cheapest first.
import { INSTANCE_TYPES, matchesTypePattern, type Architecture, type InstanceType } from '../domain/instance-types.js';
import type { InstanceRequirements } from '../ecs/instance-requirements.js';

/** Memory the instance keeps for itself (agent, OS); tasks get the rest. */
export const RESERVED_MEMORY_MIB = 256;

export function registeredMemory(t: InstanceType): number {
  return t.memoryMiB - RESERVED_MEMORY_MIB;
}

export function registeredCpu(t: InstanceType): number {
  return t.vcpu * 1024;
}

const GENERAL_PURPOSE = /^m\d/;

function inRange(v: number, r: { min?: number; max?: number } | undefined): boolean {
  return !r || ((r.min === undefined || v >= r.min) && (r.max === undefined || v <= r.max));
}

function allowedByRequirements(t: InstanceType, req: InstanceRequirements): boolean {
  if (!inRange(t.vcpu, req.vCpuCount) || !inRange(t.memoryMiB, req.memoryMiB)) return false;
  if (!inRange(t.memoryMiB / 1024 / t.vcpu, req.memoryGiBPerVCpu)) return false;
  if (req.cpuManufacturers?.length && !req.cpuManufacturers.includes(t.manufacturer)) return false;
  if (req.allowedInstanceTypes?.length && !req.allowedInstanceTypes.some((p) => matchesTypePattern(t.name, p))) return false;
  if (req.excludedInstanceTypes?.some((p) => matchesTypePattern(t.name, p))) return false;
  if (req.instanceGenerations?.length && !req.instanceGenerations.includes(t.generation)) return false;
  const burst = req.burstablePerformance ?? 'excluded';
  if ((burst === 'excluded' && t.burstable) || (burst === 'required' && !t.burstable)) return false;
  const metal = req.bareMetal ?? 'excluded';
  if ((metal === 'excluded' && t.bareMetal) || (metal === 'required' && !t.bareMetal)) return false;
  if (!inRange(t.maxNetworkInterfaces, req.networkInterfaceCount)) return false;
  if (req.acceleratorCount?.min !== undefined && req.acceleratorCount.min > 0) return false;
  return true;
}

/**
 * Types a provider may launch on a host of `hostArch`. Without requirements: the
 * cost-effective general-purpose types, never nano/micro, more than one vCPU.
 */
export function selectableTypes(req: InstanceRequirements | undefined, hostArch: Architecture): InstanceType[] {
  return INSTANCE_TYPES.filter((t) => {
    if (t.architecture !== hostArch) return false;
    if (!req) return GENERAL_PURPOSE.test(t.family) && t.generation === 'current' && !t.burstable && !t.bareMetal && t.vcpu > 1 && t.size !== 'nano' && t.size !== 'micro';
    return allowedByRequirements(t, req);
  });
}

/** The cheapest type that can hold `cpu` units and `memory` MiB, if any. */
export function cheapestFitting(types: InstanceType[], cpu: number, memory: number): InstanceType | undefined {
  return types.find((t) => registeredCpu(t) >= cpu && registeredMemory(t) >= memory);
}
