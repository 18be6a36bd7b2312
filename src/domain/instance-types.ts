// The instance type catalog: what a managed-instances provider can launch. Sizes are
// EC2's; on the local provider they are logical (enforced by the instance's cgroup).
// Prices are approximate us-east-1 on-demand USD per hour, used to rank cost.

export type Architecture = 'x86_64' | 'arm64';
export type Manufacturer = 'intel' | 'amd' | 'amazon-web-services';

export interface InstanceType {
  name: string;
  family: string;
  size: string;
  vcpu: number;
  memoryMiB: number;
  architecture: Architecture;
  manufacturer: Manufacturer;
  generation: 'current' | 'previous';
  burstable: boolean;
  bareMetal: boolean;
  /** Elastic network interfaces the type supports (one is the instance's own). */
  maxNetworkInterfaces: number;
  pricePerHour: number;
}

interface Family {
  name: string;
  arch: Architecture;
  manufacturer: Manufacturer;
  generation: 'current' | 'previous';
  /** GiB of memory per vCPU. */
  ratio: number;
  /** Price of the `large` size (2 vCPUs). */
  largePrice: number;
  sizes: string[];
  metal?: boolean;
}

const SIZE_VCPU: Record<string, number> = {
  large: 2, xlarge: 4, '2xlarge': 8, '4xlarge': 16, '8xlarge': 32, '12xlarge': 48, '16xlarge': 64, '24xlarge': 96,
};
const SIZE_ENI: Record<string, number> = {
  nano: 2, micro: 2, small: 3, medium: 3, large: 3, xlarge: 4, '2xlarge': 4, '4xlarge': 8, '8xlarge': 8,
  '12xlarge': 8, '16xlarge': 15, '24xlarge': 15, metal: 15,
};
const STANDARD = ['large', 'xlarge', '2xlarge', '4xlarge', '8xlarge', '12xlarge', '16xlarge', '24xlarge'];
const OLD = ['large', 'xlarge', '2xlarge', '4xlarge', '8xlarge', '16xlarge'];

const FAMILIES: Family[] = [
  { name: 'm5', arch: 'x86_64', manufacturer: 'intel', generation: 'current', ratio: 4, largePrice: 0.096, sizes: STANDARD, metal: true },
  { name: 'm5a', arch: 'x86_64', manufacturer: 'amd', generation: 'current', ratio: 4, largePrice: 0.086, sizes: STANDARD },
  { name: 'm6i', arch: 'x86_64', manufacturer: 'intel', generation: 'current', ratio: 4, largePrice: 0.096, sizes: STANDARD, metal: true },
  { name: 'm6a', arch: 'x86_64', manufacturer: 'amd', generation: 'current', ratio: 4, largePrice: 0.0864, sizes: STANDARD },
  { name: 'm7i', arch: 'x86_64', manufacturer: 'intel', generation: 'current', ratio: 4, largePrice: 0.1008, sizes: STANDARD },
  { name: 'm7a', arch: 'x86_64', manufacturer: 'amd', generation: 'current', ratio: 4, largePrice: 0.11592, sizes: STANDARD },
  { name: 'm6g', arch: 'arm64', manufacturer: 'amazon-web-services', generation: 'current', ratio: 4, largePrice: 0.077, sizes: STANDARD.slice(0, 7), metal: true },
  { name: 'm7g', arch: 'arm64', manufacturer: 'amazon-web-services', generation: 'current', ratio: 4, largePrice: 0.0816, sizes: STANDARD.slice(0, 7) },
  { name: 'c5', arch: 'x86_64', manufacturer: 'intel', generation: 'current', ratio: 2, largePrice: 0.085, sizes: STANDARD },
  { name: 'c6i', arch: 'x86_64', manufacturer: 'intel', generation: 'current', ratio: 2, largePrice: 0.085, sizes: STANDARD },
  { name: 'c6a', arch: 'x86_64', manufacturer: 'amd', generation: 'current', ratio: 2, largePrice: 0.0765, sizes: STANDARD },
  { name: 'c7i', arch: 'x86_64', manufacturer: 'intel', generation: 'current', ratio: 2, largePrice: 0.08925, sizes: STANDARD },
  { name: 'c6g', arch: 'arm64', manufacturer: 'amazon-web-services', generation: 'current', ratio: 2, largePrice: 0.068, sizes: STANDARD.slice(0, 7) },
  { name: 'c7g', arch: 'arm64', manufacturer: 'amazon-web-services', generation: 'current', ratio: 2, largePrice: 0.0725, sizes: STANDARD.slice(0, 7) },
  { name: 'r5', arch: 'x86_64', manufacturer: 'intel', generation: 'current', ratio: 8, largePrice: 0.126, sizes: STANDARD },
  { name: 'r6i', arch: 'x86_64', manufacturer: 'intel', generation: 'current', ratio: 8, largePrice: 0.126, sizes: STANDARD },
  { name: 'r6a', arch: 'x86_64', manufacturer: 'amd', generation: 'current', ratio: 8, largePrice: 0.1134, sizes: STANDARD },
  { name: 'r7i', arch: 'x86_64', manufacturer: 'intel', generation: 'current', ratio: 8, largePrice: 0.1323, sizes: STANDARD },
  { name: 'r6g', arch: 'arm64', manufacturer: 'amazon-web-services', generation: 'current', ratio: 8, largePrice: 0.1008, sizes: STANDARD.slice(0, 7) },
  { name: 'r7g', arch: 'arm64', manufacturer: 'amazon-web-services', generation: 'current', ratio: 8, largePrice: 0.1071, sizes: STANDARD.slice(0, 7) },
  { name: 'm4', arch: 'x86_64', manufacturer: 'intel', generation: 'previous', ratio: 4, largePrice: 0.1, sizes: OLD },
  { name: 'c4', arch: 'x86_64', manufacturer: 'intel', generation: 'previous', ratio: 1.875, largePrice: 0.1, sizes: OLD.slice(0, 5) },
  { name: 'r4', arch: 'x86_64', manufacturer: 'intel', generation: 'previous', ratio: 7.625, largePrice: 0.133, sizes: OLD },
];

/** Burstable families have irregular sizes: [size, vcpu, memory GiB, price]. */
const BURSTABLE: { name: string; arch: Architecture; manufacturer: Manufacturer; sizes: [string, number, number, number][] }[] = [
  { name: 't3', arch: 'x86_64', manufacturer: 'intel', sizes: [['nano', 2, 0.5, 0.0052], ['micro', 2, 1, 0.0104], ['small', 2, 2, 0.0208], ['medium', 2, 4, 0.0416], ['large', 2, 8, 0.0832], ['xlarge', 4, 16, 0.1664], ['2xlarge', 8, 32, 0.3328]] },
  { name: 't3a', arch: 'x86_64', manufacturer: 'amd', sizes: [['nano', 2, 0.5, 0.0047], ['micro', 2, 1, 0.0094], ['small', 2, 2, 0.0188], ['medium', 2, 4, 0.0376], ['large', 2, 8, 0.0752], ['xlarge', 4, 16, 0.1504], ['2xlarge', 8, 32, 0.3008]] },
  { name: 't4g', arch: 'arm64', manufacturer: 'amazon-web-services', sizes: [['nano', 2, 0.5, 0.0042], ['micro', 2, 1, 0.0084], ['small', 2, 2, 0.0168], ['medium', 2, 4, 0.0336], ['large', 2, 8, 0.0672], ['xlarge', 4, 16, 0.1344], ['2xlarge', 8, 32, 0.2688]] },
];

function build(): InstanceType[] {
  const out: InstanceType[] = [];
  for (const f of FAMILIES) {
    const sizes = f.metal ? [...f.sizes, 'metal'] : f.sizes;
    for (const size of sizes) {
      const vcpu = size === 'metal' ? SIZE_VCPU[f.sizes[f.sizes.length - 1]!]! : SIZE_VCPU[size]!;
      out.push({
        name: `${f.name}.${size}`, family: f.name, size, vcpu,
        memoryMiB: Math.round(vcpu * f.ratio * 1024),
        architecture: f.arch, manufacturer: f.manufacturer, generation: f.generation,
        burstable: false, bareMetal: size === 'metal',
        maxNetworkInterfaces: SIZE_ENI[size]!,
        pricePerHour: Math.round((f.largePrice * vcpu) / 2 * 1e5) / 1e5,
      });
    }
  }
  for (const b of BURSTABLE) {
    for (const [size, vcpu, gib, price] of b.sizes) {
      out.push({
        name: `${b.name}.${size}`, family: b.name, size, vcpu, memoryMiB: Math.round(gib * 1024),
        architecture: b.arch, manufacturer: b.manufacturer, generation: 'current', burstable: true, bareMetal: false,
        maxNetworkInterfaces: SIZE_ENI[size]!, pricePerHour: price,
      });
    }
  }
  return out.sort((a, b) => a.pricePerHour - b.pricePerHour || a.name.localeCompare(b.name));
}

/** Every type, cheapest first. */
export const INSTANCE_TYPES: readonly InstanceType[] = build();

const BY_NAME = new Map(INSTANCE_TYPES.map((t) => [t.name, t] as const));

export function instanceType(name: string): InstanceType | undefined {
  return BY_NAME.get(name);
}

/** `c6i.*`, `m5*.large`, `*3*` — EC2's wildcard patterns. */
export function matchesTypePattern(name: string, pattern: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(name);
}

/** Host CPU architecture in the catalog's terms. */
export function hostArchitecture(arch: string = process.arch): Architecture {
  return arch === 'arm64' ? 'arm64' : 'x86_64';
}

/** ECS's name for an architecture (`runtimePlatform.cpuArchitecture`). */
export function ecsArchitecture(a: Architecture): 'X86_64' | 'ARM64' {
  return a === 'arm64' ? 'ARM64' : 'X86_64';
}
