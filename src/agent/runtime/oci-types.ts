// The subset of the OCI runtime spec (config.json, runtime-spec v1.0.2) that Berth writes.

import type { OciSeccomp } from './seccomp.js';

export interface OciMount { destination: string; type: string; source: string; options?: string[] }
export interface OciRlimit { type: string; soft: number; hard: number }
export interface OciNamespace { type: 'pid' | 'network' | 'ipc' | 'uts' | 'mount' | 'cgroup' | 'user'; path?: string }

export interface OciProcess {
  terminal: boolean;
  user: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env: string[];
  cwd: string;
  capabilities: { bounding: string[]; effective: string[]; permitted: string[] };
  rlimits?: OciRlimit[];
  noNewPrivileges: boolean;
  selinuxLabel?: string;
}

export interface OciDevice { path: string; type: 'c' | 'b'; major: number; minor: number; fileMode: number; uid: number; gid: number }

export interface OciResources {
  devices: { allow: boolean; access: string; type?: string; major?: number; minor?: number }[];
  memory?: { limit?: number; reservation?: number };
  cpu?: { shares?: number; quota?: number; period?: number };
  pids?: { limit: number };
}

export interface OciConfig {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  annotations: Record<string, string>;
  linux: {
    cgroupsPath: string;
    resources: OciResources;
    namespaces: OciNamespace[];
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp?: OciSeccomp;
    mountLabel?: string;
    devices?: OciDevice[];
    sysctl?: Record<string, string>;
  };
}

/** In a config object, -1 stands for RLIM_INFINITY (2^64-1), which a JS number cannot hold exactly. */
export const RLIM_INFINITY = -1;

/** config.json text; writes RLIM_INFINITY as the exact uint64 runc expects. */
export function serializeOciConfig(config: OciConfig): string {
  const marker = '"__berth_rlim_infinity__"';
  const text = JSON.stringify(config, (key, value) =>
    (key === 'soft' || key === 'hard') && value === RLIM_INFINITY ? marker.slice(1, -1) : value, 1);
  return text.split(marker).join('18446744073709551615');
}
