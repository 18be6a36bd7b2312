// The facts an agent reports about its instance, measured on the instance itself
// (never copied from the control plane's configuration).
import { existsSync, readFileSync } from 'node:fs';
import type { Attribute } from './protocol.js';

const read = (path: string): string | undefined => {
  try { return readFileSync(path, 'utf8').trim(); } catch { return undefined; }
};

/** FIPS mode of the running kernel: `/proc/sys/crypto/fips_enabled`, absent = off. */
export function fipsMode(): 'enabled' | 'disabled' {
  return read('/proc/sys/crypto/fips_enabled') === '1' ? 'enabled' : 'disabled';
}

/** SELinux as the kernel reports it; `unavailable` when the kernel has none. */
export function selinuxState(): 'enforcing' | 'permissive' | 'unavailable' {
  if (!existsSync('/sys/fs/selinux/enforce')) return 'unavailable';
  return read('/sys/fs/selinux/enforce') === '1' ? 'enforcing' : 'permissive';
}

/** Whether `/` is mounted read-only in this mount namespace. */
export function rootReadOnly(mountinfo = read('/proc/self/mountinfo') ?? ''): boolean {
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f[4] === '/') return (f[5] ?? '').split(',').includes('ro');
  }
  return false;
}

/** Listening TCP and UDP sockets in this network namespace (should be none on an instance). */
export function listeningSockets(): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (read(file) ?? '').split('\n').slice(1)) if (line.trim().split(/\s+/)[3] === '0A') n++;
  }
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    n += (read(file) ?? '').split('\n').slice(1).filter((l) => l.trim()).length;
  }
  return n;
}

export function cpuArchitecture(arch = process.arch): string {
  return arch === 'arm64' ? 'arm64' : 'x86_64';
}

export interface InstanceIdentity {
  instanceType: string;
  availabilityZone: string;
  subnetId: string;
  platformVersion: string;
  privilegedCapabilities: string[];
  /** Host access the provider allowed (berth:host-access). */
  hostAccess: string[];
  fipsRequested: boolean;
}

/** ECS capability attributes this agent supports (they match task definitions' requiresAttributes). */
export const AGENT_CAPABILITIES = [
  'com.amazonaws.ecs.capability.docker-remote-api.1.17', 'com.amazonaws.ecs.capability.docker-remote-api.1.18',
  'com.amazonaws.ecs.capability.docker-remote-api.1.19', 'com.amazonaws.ecs.capability.docker-remote-api.1.21',
  'com.amazonaws.ecs.capability.docker-remote-api.1.22', 'com.amazonaws.ecs.capability.docker-remote-api.1.23',
  'com.amazonaws.ecs.capability.docker-remote-api.1.24', 'com.amazonaws.ecs.capability.docker-remote-api.1.25',
  'com.amazonaws.ecs.capability.docker-remote-api.1.29', 'com.amazonaws.ecs.capability.docker-remote-api.1.32',
  'com.amazonaws.ecs.capability.logging-driver.awslogs', 'com.amazonaws.ecs.capability.task-iam-role',
  'ecs.capability.task-eni', 'ecs.capability.container-health-check', 'ecs.capability.container-ordering',
  'ecs.capability.execution-role-awslogs', 'ecs.capability.init-process-enabled', 'ecs.capability.secrets.asm.environment-variables',
];

export function measureAttributes(id: InstanceIdentity): Attribute[] {
  return [
    { name: 'ecs.cpu-architecture', value: cpuArchitecture() },
    { name: 'ecs.instance-type', value: id.instanceType },
    { name: 'ecs.availability-zone', value: id.availabilityZone },
    { name: 'ecs.subnet-id', value: id.subnetId },
    { name: 'ecs.os-type', value: 'linux' },
    { name: 'ecs.os-family', value: 'LINUX' },
    { name: 'berth.platform-version', value: id.platformVersion },
    { name: 'berth.fips-mode', value: fipsMode() },
    { name: 'berth.selinux', value: selinuxState() },
    { name: 'berth.root-filesystem', value: rootReadOnly() ? 'read-only' : 'read-write' },
    { name: 'berth.listening-sockets', value: String(listeningSockets()) },
    { name: 'berth.privileged-capabilities', value: id.privilegedCapabilities.length ? id.privilegedCapabilities.join('+') : 'NONE' },
    { name: 'berth.host-access', value: id.hostAccess.length ? id.hostAccess.join('+') : 'NONE' },
    ...AGENT_CAPABILITIES.map((name) => ({ name })),
  ];
}
