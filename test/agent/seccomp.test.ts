// Unit tests of the containers-common → OCI seccomp conversion (pure).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DEFAULT_CAPABILITIES } from '../../src/domain/capabilities.js';
import {
  CLONE_NAMESPACE_FLAGS, DEFAULT_SECCOMP_PROFILE, SeccompProfiles, convertSeccompProfile, kernelAtLeast, withDockerNamespaceRules,
  type OciSeccomp, type SourceProfile,
} from '../../src/agent/runtime/seccomp.js';

const actionsFor = (p: OciSeccomp, name: string) => p.syscalls.filter((r) => r.names.includes(name)).map((r) => `${r.action}${r.errnoRet !== undefined ? `:${r.errnoRet}` : ''}${r.args ? `/${r.args.length}args` : ''}`);

describe('seccomp conversion (synthetic profile)', () => {
  const profile: SourceProfile = {
    defaultAction: 'SCMP_ACT_ERRNO', defaultErrno: 'ENOSYS',
    archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }, { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] }],
    syscalls: [
      { names: ['read'], action: 'SCMP_ACT_ALLOW', comment: 'x' },
      { names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['bpf'], action: 'SCMP_ACT_ERRNO', errno: 'EPERM', excludes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['both'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'] } },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
      { names: ['new_in_9'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '9.0' } },
      { names: ['old_only'], action: 'SCMP_ACT_ALLOW', excludes: { minKernel: '5.4' } },
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 16, op: 'SCMP_CMP_NE' }] },
    ],
  };

  it('flattens archMap for the host arch and maps errno names', () => {
    const p = convertSeccompProfile(profile, [], 'amd64', '6.1.0');
    assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    assert.equal(p.defaultErrnoRet, 38);
    assert.deepEqual(convertSeccompProfile(profile, [], 'arm64', '6.1.0').architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    assert.equal(JSON.stringify(p).match(/includes|excludes|comment|"errno"/), null);
  });

  it('keeps exactly one of each cap-gated pair; includes need every cap', () => {
    const none = convertSeccompProfile(profile, DEFAULT_CAPABILITIES, 'amd64', '6.1.0');
    assert.deepEqual(actionsFor(none, 'bpf'), ['SCMP_ACT_ERRNO:1']);
    const admin = convertSeccompProfile(profile, [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'amd64', '6.1.0');
    assert.deepEqual(actionsFor(admin, 'bpf'), ['SCMP_ACT_ALLOW']);
    assert.deepEqual(actionsFor(admin, 'both'), []);
    assert.deepEqual(actionsFor(convertSeccompProfile(profile, ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'], 'amd64', '6.1.0'), 'both'), ['SCMP_ACT_ALLOW']);
  });

  it('arches and kernel versions', () => {
    assert.deepEqual(actionsFor(convertSeccompProfile(profile, [], 'amd64', '6.1.0'), 'arch_prctl'), ['SCMP_ACT_ALLOW']);
    assert.deepEqual(actionsFor(convertSeccompProfile(profile, [], 'arm64', '6.1.0'), 'arch_prctl'), []);
    assert.deepEqual(actionsFor(convertSeccompProfile(profile, [], 'amd64', '6.1.0'), 'new_in_9'), []);
    assert.deepEqual(actionsFor(convertSeccompProfile(profile, [], 'amd64', '10.2.0-1-amd64'), 'new_in_9'), ['SCMP_ACT_ALLOW']);
    assert.deepEqual(actionsFor(convertSeccompProfile(profile, [], 'amd64', '5.3.0'), 'old_only'), ['SCMP_ACT_ALLOW']);
    assert.deepEqual(actionsFor(convertSeccompProfile(profile, [], 'amd64', '5.4.0'), 'old_only'), []);
    assert.deepEqual(convertSeccompProfile(profile, [], 'amd64', '6.1.0').syscalls.find((r) => r.names[0] === 'socket')?.args, [{ index: 0, value: 16, valueTwo: 0, op: 'SCMP_CMP_NE' }]);
    assert.equal(kernelAtLeast('6.18.0', '6.9'), true);
    assert.equal(kernelAtLeast('5.10.0-30-amd64', '5.11'), false);
  });
});

describe('seccomp conversion (the installed containers-common profile)', { skip: existsSync(DEFAULT_SECCOMP_PROFILE) ? false : 'no /usr/share/containers/seccomp.json' }, () => {
  const raw = JSON.parse(readFileSync(DEFAULT_SECCOMP_PROFILE, 'utf8')) as SourceProfile;

  it("for Docker's default caps: bpf gets EPERM, add_key falls to ENOSYS, netlink audit allowed", () => {
    const p = convertSeccompProfile(raw, DEFAULT_CAPABILITIES, 'amd64', '6.1.0');
    assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(p.defaultErrnoRet, 38);
    assert.deepEqual(actionsFor(p, 'bpf'), ['SCMP_ACT_ERRNO:1']);
    // containers-common (unlike moby's profile) leaves mount to the kernel's CAP_SYS_ADMIN check.
    assert.deepEqual(actionsFor(p, 'mount'), ['SCMP_ACT_ALLOW']);
    assert.deepEqual(actionsFor(p, 'add_key'), []);
    assert.deepEqual(actionsFor(p, 'kexec_load'), ['SCMP_ACT_ERRNO:1']); // never, whatever the caps
    assert.ok(actionsFor(p, 'read').includes('SCMP_ACT_ALLOW'));
    assert.ok(actionsFor(p, 'chroot').includes('SCMP_ACT_ALLOW')); // CAP_SYS_CHROOT is a default
  });

  it('adding CAP_SYS_ADMIN turns the EPERM twins into ALLOW; dropping CAP_AUDIT_WRITE blocks NETLINK_AUDIT', () => {
    const admin = convertSeccompProfile(raw, [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'amd64', '6.1.0');
    assert.deepEqual(actionsFor(admin, 'bpf'), ['SCMP_ACT_ALLOW']);
    const noAudit = convertSeccompProfile(raw, DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_AUDIT_WRITE'), 'amd64', '6.1.0');
    assert.ok(actionsFor(noAudit, 'socket').includes('SCMP_ACT_ERRNO:22/2args'));
  });

  it('caches one conversion per capability set', () => {
    const cache = new SeccompProfiles(DEFAULT_SECCOMP_PROFILE, 'amd64', '6.1.0');
    const a = cache.forCapabilities(['CAP_CHOWN', 'CAP_KILL']);
    assert.equal(cache.forCapabilities(['CAP_KILL', 'CAP_CHOWN']), a);
    assert.notEqual(cache.forCapabilities(['CAP_KILL']), a);
  });

  it("Docker's namespace rules: no unshare, setns, mount or namespace clone without CAP_SYS_ADMIN", () => {
    const docker = withDockerNamespaceRules(raw);
    const p = convertSeccompProfile(docker, DEFAULT_CAPABILITIES, 'amd64', '6.1.0');
    for (const n of ['unshare', 'setns', 'mount', 'umount2', 'pivot_root']) assert.deepEqual(actionsFor(p, n), ['SCMP_ACT_ERRNO:1'], n);
    assert.deepEqual(actionsFor(p, 'clone3'), ['SCMP_ACT_ERRNO:38']);
    assert.deepEqual(p.syscalls.filter((r) => r.names.includes('clone')).map((r) => r.args), [[{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]]);
    assert.deepEqual(convertSeccompProfile(docker, DEFAULT_CAPABILITIES, 's390x', '6.1.0').syscalls.filter((r) => r.names.includes('clone')).map((r) => r.args?.[0]?.index), [1]);
    const admin = convertSeccompProfile(docker, [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'amd64', '6.1.0');
    for (const n of ['unshare', 'setns', 'mount', 'clone', 'clone3']) assert.deepEqual(actionsFor(admin, n), ['SCMP_ACT_ALLOW'], n);
    // Everything else of the profile is kept.
    assert.deepEqual(actionsFor(p, 'bpf'), ['SCMP_ACT_ERRNO:1']);
    assert.ok(actionsFor(p, 'read').includes('SCMP_ACT_ALLOW'));
  });

  it('SeccompProfiles applies the namespace rules', () => {
    const p = new SeccompProfiles(DEFAULT_SECCOMP_PROFILE, 'amd64', '6.1.0').forCapabilities(DEFAULT_CAPABILITIES);
    assert.deepEqual(actionsFor(p, 'unshare'), ['SCMP_ACT_ERRNO:1']);
  });
});
