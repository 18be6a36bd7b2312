// Attribute-based instance type selection (EC2's InstanceRequirementsRequest): the
// rules a request must satisfy before placement can select types from the catalog.
import { invalidParameter } from '../api/errors.js';

import type { InstanceRequirements, Range } from '../domain/instance-requirements.js';

export type { InstanceRequirements };

const TYPE_PATTERN = /^[a-zA-Z0-9.*-]{1,30}$/;
const P = 'instanceRequirements';

function checkRange(r: Range | undefined, name: string): void {
  if (!r) return;
  if (r.min !== undefined && r.min < 0) throw invalidParameter(`${P}.${name}.min must be 0 or greater; got ${r.min}.`);
  if (r.max !== undefined && r.max < 0) throw invalidParameter(`${P}.${name}.max must be 0 or greater; got ${r.max}.`);
  if (r.min !== undefined && r.max !== undefined && r.max < r.min) {
    throw invalidParameter(`${P}.${name}.max (${r.max}) must be greater than or equal to ${name}.min (${r.min}).`);
  }
}

export function validateInstanceRequirements(req: InstanceRequirements): void {
  checkRange(req.vCpuCount, 'vCpuCount');
  checkRange(req.memoryMiB, 'memoryMiB');
  for (const name of ['memoryGiBPerVCpu', 'networkInterfaceCount', 'totalLocalStorageGB', 'baselineEbsBandwidthMbps',
    'acceleratorCount', 'acceleratorTotalMemoryMiB', 'networkBandwidthGbps'] as const) {
    checkRange(req[name], name);
  }
  if (req.allowedInstanceTypes?.length && req.excludedInstanceTypes?.length) {
    throw invalidParameter(`${P} can specify allowedInstanceTypes or excludedInstanceTypes, not both.`);
  }
  for (const list of ['allowedInstanceTypes', 'excludedInstanceTypes'] as const) {
    for (const t of req[list] ?? []) {
      if (!TYPE_PATTERN.test(t)) {
        throw invalidParameter(`${P}.${list} entry '${t}' is not an instance type or pattern (letters, digits, '.', '-' and '*' wildcards, up to 30 characters, e.g. m5.large or c6i.*).`);
      }
    }
  }
  if (req.spotMaxPricePercentageOverLowestPrice !== undefined && req.maxSpotPriceAsPercentageOfOptimalOnDemandPrice !== undefined) {
    throw invalidParameter(`${P} can specify spotMaxPricePercentageOverLowestPrice or maxSpotPriceAsPercentageOfOptimalOnDemandPrice, not both.`);
  }
  if (req.instanceGenerations && new Set(req.instanceGenerations).size !== req.instanceGenerations.length) {
    throw invalidParameter(`${P}.instanceGenerations lists a generation more than once.`);
  }
}
