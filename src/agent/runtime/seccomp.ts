// The containers-common seccomp profile (/usr/share/containers/seccomp.json) is in the
// moby/containers format, not OCI's `linux.seccomp`: it has an `archMap` and rules gated by
// `includes`/`excludes` on capabilities, arches and kernel versions. runc silently ignores
// those fields and would load the ALLOW *and* the ERRNO twin of each gated rule (ALLOW wins),
// so the profile must be converted for the container's final bounding set and the host arch
// — the same logic as moby profiles/seccomp and containers/common pkg/seccomp.
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';

export const DEFAULT_SECCOMP_PROFILE = '/usr/share/containers/seccomp.json';

interface Filter { caps?: string[]; arches?: string[]; minKernel?: string }
interface SourceArg { index: number; value: number; valueTwo?: number; op: string }
interface SourceRule {
  names?: string[]; name?: string; action: string; errno?: string; errnoRet?: number;
  args?: SourceArg[] | null; includes?: Filter; excludes?: Filter; comment?: string;
}
export interface SourceProfile {
  defaultAction: string; defaultErrno?: string; defaultErrnoRet?: number;
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  architectures?: string[]; flags?: string[]; syscalls: SourceRule[];
}

export interface OciSeccompRule {
  names: string[]; action: string; errnoRet?: number;
  args?: { index: number; value: number; valueTwo: number; op: string }[];
}
export interface OciSeccomp {
  defaultAction: string; defaultErrnoRet?: number; architectures?: string[]; flags?: string[];
  syscalls: OciSeccompRule[];
}

/** GOARCH → libseccomp's native arch name (the archMap key). */
const NATIVE: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64', s390x: 'SCMP_ARCH_S390X', ppc64le: 'SCMP_ARCH_PPC64LE',
  '386': 'SCMP_ARCH_X86', arm: 'SCMP_ARCH_ARM', riscv64: 'SCMP_ARCH_RISCV64',
};

/** `kernel` ≥ `min`, comparing major.minor (what moby compares). */
export function kernelAtLeast(kernel: string, min: string): boolean {
  const [a = 0, b = 0] = kernel.split(/[.-]/).map((n) => parseInt(n, 10) || 0);
  const [x = 0, y = 0] = min.split('.').map((n) => parseInt(n, 10) || 0);
  return a > x || (a === x && b >= y);
}

const errnoNumber = (name?: string): number | undefined =>
  name ? (constants.errno as Record<string, number>)[name] : undefined;

/**
 * Namespace and mount syscalls, governed by Docker's rules below instead of the profile's:
 * containers-common allows them to everyone (rootless podman needs user namespaces), which
 * lets a default container create a user namespace and, as root in it, mount filesystems
 * and reach kernel code paths (cgroup v1 release_agent among them) that need CAP_SYS_ADMIN.
 */
export const NAMESPACE_SYSCALLS = [
  'clone', 'clone3', 'unshare', 'setns', 'mount', 'umount', 'umount2', 'pivot_root',
  // The new mount API: moby allows it only with CAP_SYS_ADMIN too.
  'fsopen', 'fsconfig', 'fsmount', 'fspick', 'open_tree', 'move_mount', 'mount_setattr',
  // Not namespaced: the kernel keyrings (root's on the machine) and its log.
  'keyctl', 'syslog',
] as const;

/** Refused (EPERM) without CAP_SYS_ADMIN, allowed with it. */
const ADMIN_ONLY = ['unshare', 'setns', 'mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'open_tree', 'move_mount', 'mount_setattr'];

/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (moby's mask). */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/**
 * moby's default profile for those syscalls: with CAP_SYS_ADMIN all are allowed; without it
 * clone only without namespace flags (the flags argument is the second one on s390), clone3
 * fails with ENOSYS so libc falls back to clone (seccomp cannot read its struct argument),
 * and unshare, setns, mount, umount and pivot_root fail with EPERM. A clone with namespace
 * flags falls to the profile's default action (ENOSYS), as it does under Docker.
 */
export const NAMESPACE_RULES: readonly SourceRule[] = [
  { names: [...NAMESPACE_SYSCALLS], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
  { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] } },
  { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], includes: { arches: ['s390', 's390x'] }, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errno: 'ENOSYS', excludes: { caps: ['CAP_SYS_ADMIN'] } },
  { names: ADMIN_ONLY, action: 'SCMP_ACT_ERRNO', errno: 'EPERM', excludes: { caps: ['CAP_SYS_ADMIN'] } },
  // keyctl has no rule: like add_key and request_key (and as in moby) it falls to the
  // profile's default action for every container, since keyrings are not namespaced and a
  // task's root would reach the machine root's keys.
  // The kernel log: with CAP_SYSLOG or CAP_SYS_ADMIN only (else the default action).
  { names: ['syslog'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYSLOG'] } },
  { names: ['syslog'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] }, excludes: { caps: ['CAP_SYSLOG'] } },
];

const governed = new Set<string>(NAMESPACE_SYSCALLS);

/** The profile with its own rules for the namespace syscalls replaced by NAMESPACE_RULES. */
export function withDockerNamespaceRules(profile: SourceProfile): SourceProfile {
  const syscalls: SourceRule[] = [];
  for (const rule of profile.syscalls) {
    const { name, ...rest } = rule;
    const names = (rule.names?.length ? rule.names : name ? [name] : []).filter((n) => !governed.has(n));
    if (names.length) syscalls.push({ ...rest, names });
  }
  return { ...profile, syscalls: [...syscalls, ...NAMESPACE_RULES] };
}

/** Pure conversion for one bounding set, GOARCH and kernel release. */
export function convertSeccompProfile(profile: SourceProfile, boundingCaps: readonly string[], arch: string, kernel: string): OciSeccomp {
  const caps = new Set(boundingCaps);
  const out: OciSeccomp = { defaultAction: profile.defaultAction, syscalls: [] };
  const defaultErrno = profile.defaultErrnoRet ?? errnoNumber(profile.defaultErrno);
  if (defaultErrno !== undefined && profile.defaultAction === 'SCMP_ACT_ERRNO') out.defaultErrnoRet = defaultErrno;
  const native = NATIVE[arch];
  if (!native) throw new Error(`no seccomp architecture for ${arch}`);
  if (profile.archMap) {
    const entry = profile.archMap.find((a) => a.architecture === native);
    out.architectures = entry ? [entry.architecture, ...(entry.subArchitectures ?? [])] : [native];
  } else if (profile.architectures) {
    out.architectures = [...profile.architectures];
  }
  if (profile.flags?.length) out.flags = [...profile.flags];
  for (const rule of profile.syscalls) {
    const inc = rule.includes ?? {};
    const exc = rule.excludes ?? {};
    // Excludes: any match removes the rule.
    if (exc.arches?.includes(arch)) continue;
    if (exc.caps?.some((c) => caps.has(c))) continue;
    if (exc.minKernel && kernelAtLeast(kernel, exc.minKernel)) continue;
    // Includes: every condition given must hold (all caps, one of the arches).
    if (inc.arches?.length && !inc.arches.includes(arch)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) continue;
    if (inc.minKernel && !kernelAtLeast(kernel, inc.minKernel)) continue;
    const names = rule.names?.length ? rule.names : rule.name ? [rule.name] : [];
    if (!names.length) continue;
    const o: OciSeccompRule = { names: [...names], action: rule.action };
    const errno = rule.errnoRet ?? errnoNumber(rule.errno);
    if (errno !== undefined && rule.action === 'SCMP_ACT_ERRNO') o.errnoRet = errno;
    if (rule.args?.length) o.args = rule.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op }));
    out.syscalls.push(o);
  }
  return out;
}

/**
 * Reads the profile once and converts it once per capability set (a handful of distinct
 * sets exist on an instance, so the cache stays tiny).
 */
export class SeccompProfiles {
  private source?: SourceProfile;
  private readonly cache = new Map<string, OciSeccomp>();
  constructor(private readonly path: string = DEFAULT_SECCOMP_PROFILE, private readonly arch: string, private readonly kernel: string) {}

  forCapabilities(caps: readonly string[]): OciSeccomp {
    const key = [...caps].sort().join(',');
    let p = this.cache.get(key);
    if (!p) {
      this.source ??= withDockerNamespaceRules(JSON.parse(readFileSync(this.path, 'utf8')) as SourceProfile);
      p = convertSeccompProfile(this.source, caps, this.arch, this.kernel);
      this.cache.set(key, p);
    }
    return p;
  }
}
