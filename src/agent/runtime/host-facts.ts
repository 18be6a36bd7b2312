// Facts about the host the agent runs on that decide what a container may be given.
// Measured, never assumed: a container cannot get a capability the agent does not hold,
// an rlimit above the agent's own hard limit (without CAP_SYS_RESOURCE, which this kind of
// sandbox lacks), or an SELinux label on a kernel without SELinux.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { ALL_CAPABILITIES, type Capability } from '../../domain/capabilities.js';

/** Linux capability numbers: the index in ALL_CAPABILITIES is the kernel's bit number. */
export function capabilitiesFromMask(hex: string): Capability[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

export function capabilityMask(caps: readonly string[]): string {
  let mask = 0n;
  for (const c of caps) {
    const bit = (ALL_CAPABILITIES as readonly string[]).indexOf(c);
    if (bit >= 0) mask |= 1n << BigInt(bit);
  }
  return mask.toString(16).padStart(16, '0');
}

/** The kernel's rlimit names as /proc/<pid>/limits prints them, keyed by the OCI name. */
const LIMIT_LABELS: Record<string, string> = {
  RLIMIT_CPU: 'Max cpu time', RLIMIT_FSIZE: 'Max file size', RLIMIT_DATA: 'Max data size',
  RLIMIT_STACK: 'Max stack size', RLIMIT_CORE: 'Max core file size', RLIMIT_RSS: 'Max resident set',
  RLIMIT_NPROC: 'Max processes', RLIMIT_NOFILE: 'Max open files', RLIMIT_MEMLOCK: 'Max locked memory',
  RLIMIT_AS: 'Max address space', RLIMIT_LOCKS: 'Max file locks', RLIMIT_SIGPENDING: 'Max pending signals',
  RLIMIT_MSGQUEUE: 'Max msgqueue size', RLIMIT_NICE: 'Max nice priority', RLIMIT_RTPRIO: 'Max realtime priority',
  RLIMIT_RTTIME: 'Max realtime timeout',
};

/** Hard limits from a /proc/<pid>/limits text; `Infinity` for unlimited. */
export function parseHardLimits(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [oci, label] of Object.entries(LIMIT_LABELS)) {
    const line = text.split('\n').find((l) => l.startsWith(label));
    if (!line) continue;
    // Columns: label (with spaces), soft, hard, [units]; the label is fixed-width-ish, so split after it.
    const [, hard] = line.slice(label.length).trim().split(/\s+/);
    out[oci] = hard === 'unlimited' ? Infinity : Number(hard);
  }
  return out;
}

/** Go's GOARCH name for this Node process (what seccomp profiles and OCI images use). */
export function goArch(nodeArch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };
  const a = map[nodeArch];
  if (!a) throw new Error(`unsupported CPU architecture ${nodeArch}`);
  return a;
}

/**
 * SELinux is enabled when selinuxfs is mounted (what libselinux's is_selinux_enabled checks
 * first). On this project's machines it is absent, so no label is ever set there.
 */
export function selinuxEnabled(selinuxfs = '/sys/fs/selinux'): boolean {
  return existsSync(`${selinuxfs}/enforce`);
}

export interface HostFacts {
  /** GOARCH, e.g. amd64. */
  arch: string;
  /** Kernel release, e.g. 6.1.0-18-amd64 (seccomp rules may depend on it). */
  kernel: string;
  selinux: boolean;
  /** The agent's own bounding set: a container cannot get more. */
  boundingCapabilities: Capability[];
  /** The agent's own hard rlimits by OCI name (RLIMIT_NOFILE...); Infinity = unlimited. */
  hardLimits: Record<string, number>;
}

export function measureHostFacts(): HostFacts {
  const status = readFileSync('/proc/self/status', 'utf8');
  const capBnd = /^CapBnd:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0';
  return {
    arch: goArch(),
    kernel: release(),
    selinux: selinuxEnabled(),
    boundingCapabilities: capabilitiesFromMask(capBnd),
    hardLimits: parseHardLimits(readFileSync('/proc/self/limits', 'utf8')),
  };
}
