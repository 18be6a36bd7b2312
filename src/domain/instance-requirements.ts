// The shape of EC2's InstanceRequirementsRequest, as capacity providers carry it: placement
// selects instance types by it, ecs/instance-requirements.ts validates it.

export interface Range { min?: number; max?: number }
export interface InstanceRequirements {
  vCpuCount: Range;
  memoryMiB: Range;
  cpuManufacturers?: string[];
  memoryGiBPerVCpu?: Range;
  excludedInstanceTypes?: string[];
  allowedInstanceTypes?: string[];
  instanceGenerations?: string[];
  spotMaxPricePercentageOverLowestPrice?: number;
  onDemandMaxPricePercentageOverLowestPrice?: number;
  maxSpotPriceAsPercentageOfOptimalOnDemandPrice?: number;
  bareMetal?: string;
  burstablePerformance?: string;
  networkInterfaceCount?: Range;
  totalLocalStorageGB?: Range;
  baselineEbsBandwidthMbps?: Range;
  acceleratorCount?: Range;
  acceleratorTotalMemoryMiB?: Range;
  networkBandwidthGbps?: Range;
  [other: string]: unknown;
}
