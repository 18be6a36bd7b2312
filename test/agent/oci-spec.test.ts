// Unit tests of the pure config.json builder (no runc, no root).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, PRIVILEGED_CAPABILITIES } from '../../src/domain/capabilities.js';
import { ContainerSpecError, HostAccessError, PrivilegedCapabilityError } from '../../src/agent/runtime/errors.js';
import type { HostFacts } from '../../src/agent/runtime/host-facts.js';
import type { ImageConfig } from '../../src/agent/runtime/image-config.js';
import {
  ANNOTATION_CONTAINER_NAME, ANNOTATION_TASK_ARN, DEFAULT_PIDS_LIMIT, INIT_PATH_IN_CONTAINER, MASKED_PATHS, READONLY_PATHS,
  buildOciSpec, cpuShares, type SpecInput,
} from '../../src/agent/runtime/oci-spec.js';
import { serializeOciConfig } from '../../src/agent/runtime/oci-types.js';
import type { OciSeccomp } from '../../src/agent/runtime/seccomp.js';
import { GROUP, PASSWD } from '../helpers/image.js';
import { makeContainer, makeTask } from './fixtures.js';

const host: HostFacts = {
  arch: 'amd64', kernel: '6.1.0', selinux: false,
  boundingCapabilities: [...ALL_CAPABILITIES],
  hardLimits: { RLIMIT_NOFILE: 20000, RLIMIT_NPROC: 96365, RLIMIT_CORE: Infinity },
};
const image: ImageConfig = { env: ['PATH=/usr/bin:/bin', 'LANG=C', 'A=image'], cmd: ['/bin/sh'], labels: {} };
const seccompFor = (caps: readonly string[]): OciSeccomp => ({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: [`for:${caps.length}`], action: 'SCMP_ACT_ALLOW' }] });

const fuse = (hostPath: string) => {
  if (hostPath !== '/dev/fuse') throw new ContainerSpecError(`no ${hostPath}`);
  return { type: 'c' as const, major: 10, minor: 229, fileMode: 0o600, uid: 0, gid: 0 };
};

function input(over: Partial<SpecInput> = {}, c = {}, t = {}): SpecInput {
  return {
    task: makeTask({ taskId: '0123456789abcdef0123456789abcdef', ...t }), container: makeContainer(c), image,
    rootfsPath: '/data/containers/x/rootfs', cgroupsPath: '/berth/i-1/task/x', passwd: PASSWD, group: GROUP, host, seccompFor,
    instanceHostname: 'instance-1', volumePaths: {}, statDevice: fuse, ...over,
  };
}

describe('buildOciSpec', () => {
  it('host access (pidMode/ipcMode host, devices) needs the provider opt-in, naming the tag', () => {
    const dev = { devices: [{ hostPath: '/dev/fuse', containerPath: '/dev/f', permissions: ['read'] }] };
    for (const [c, t, kind] of [[{}, { pidMode: 'host' }, 'pidMode:host'], [{}, { ipcMode: 'host' }, 'ipcMode:host'], [dev, {}, 'devices']] as const) {
      assert.throws(() => buildOciSpec(input({}, c, t)), (e: Error) => e instanceof HostAccessError && e.message.includes('berth:host-access') && e.message.includes(kind));
      assert.throws(() => buildOciSpec(input({}, c, { ...t, allowedHostAccess: ['devices', 'pidMode:host', 'ipcMode:host'].filter((k) => k !== kind) })), HostAccessError);
    }
  });

  it('devices: the node and a devices-cgroup rule with exactly the permissions asked for', () => {
    const s = buildOciSpec(input({}, { devices: [{ hostPath: '/dev/fuse', containerPath: '/dev/f', permissions: ['read', 'mknod'] }] }, { allowedHostAccess: ['devices'] }));
    assert.deepEqual(s.linux.devices, [{ path: '/dev/f', type: 'c', major: 10, minor: 229, fileMode: 0o600, uid: 0, gid: 0 }]);
    assert.deepEqual(s.linux.resources.devices, [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rm' }]);
    assert.throws(() => buildOciSpec(input({}, { devices: [{ hostPath: '/dev/nope', containerPath: '/dev/n', permissions: ['read'] }] }, { allowedHostAccess: ['devices'] })), ContainerSpecError);
    assert.throws(() => buildOciSpec(input({}, { devices: [{ hostPath: '/etc/../dev/fuse', containerPath: '/dev/f', permissions: ['read'] }] }, { allowedHostAccess: ['devices'] })), ContainerSpecError);
    assert.equal(buildOciSpec(input()).linux.devices, undefined);
  });

  it('systemControls: namespaced sysctls only; net.* not in host network mode, IPC ones not with ipcMode host', () => {
    const aws = { networkMode: 'awsvpc', network: { netnsPath: '/run/netns/berth0-task-0123456789abcdef0123456789abcdef', ipv4Address: '10.0.0.2', gateway: '10.0.0.1', prefixLength: 24 } };
    const s = buildOciSpec(input({}, { systemControls: [{ namespace: 'net.ipv4.ip_forward', value: '1' }, { namespace: 'kernel.shmmni', value: '9' }] }, aws));
    assert.deepEqual(s.linux.sysctl, { 'net.ipv4.ip_forward': '1', 'kernel.shmmni': '9' });
    assert.throws(() => buildOciSpec(input({}, { systemControls: [{ namespace: 'net.ipv4.ip_forward', value: '1' }] })), /host network mode/);
    assert.throws(() => buildOciSpec(input({}, { systemControls: [{ namespace: 'kernel.panic', value: '1' }] }, aws)), /kernel\.panic/);
    assert.throws(() => buildOciSpec(input({}, { systemControls: [{ namespace: 'kernel.sem', value: '1' }] }, { ipcMode: 'host', allowedHostAccess: ['ipcMode:host'] })), /ipcMode host/);
    assert.equal(buildOciSpec(input()).linux.sysctl, undefined);
  });

  it("secure defaults: Docker's 14 capabilities, no inheritable/ambient, masks, NNP, seccomp, no rlimits, no label", () => {
    const s = buildOciSpec(input());
    assert.deepEqual(new Set(s.process.capabilities.bounding), new Set(DEFAULT_CAPABILITIES));
    assert.deepEqual(s.process.capabilities.effective, s.process.capabilities.bounding);
    assert.deepEqual(s.process.capabilities.permitted, s.process.capabilities.bounding);
    assert.equal('inheritable' in s.process.capabilities, false);
    assert.equal('ambient' in s.process.capabilities, false);
    assert.equal(s.process.noNewPrivileges, true);
    assert.deepEqual(s.linux.maskedPaths, MASKED_PATHS);
    assert.deepEqual(s.linux.readonlyPaths, READONLY_PATHS);
    assert.deepEqual(s.linux.seccomp?.syscalls[0]?.names, ['for:14']);
    assert.equal(s.process.rlimits, undefined);
    assert.equal(s.process.selinuxLabel, undefined);
    assert.equal(s.linux.mountLabel, undefined);
    assert.equal(s.root.readonly, false);
    assert.equal(s.linux.cgroupsPath, '/berth/i-1/task/x');
    assert.equal(s.annotations[ANNOTATION_CONTAINER_NAME], 'app');
    assert.match(s.annotations[ANNOTATION_TASK_ARN]!, /task\/test\/0123456789abcdef/);
    assert.deepEqual(s.linux.resources.pids, { limit: DEFAULT_PIDS_LIMIT });
  });

  it('namespaces: awsvpc joins the task netns and is named after the task; host shares the netns', () => {
    const aws = buildOciSpec(input({}, {}, { networkMode: 'awsvpc', network: { netnsPath: '/run/netns/berth0-task-0123456789abcdef0123456789abcdef', ipv4Address: '10.0.0.2', gateway: '10.0.0.1', prefixLength: 24 } }));
    assert.deepEqual(aws.linux.namespaces, [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network', path: '/run/netns/berth0-task-0123456789abcdef0123456789abcdef' }]);
    assert.equal(aws.hostname, '0123456789ab');
    const hostMode = buildOciSpec(input());
    assert.equal(hostMode.linux.namespaces.some((n) => n.type === 'network'), false);
    assert.equal(hostMode.hostname, 'instance-1');
    assert.throws(() => buildOciSpec(input({}, {}, { networkMode: 'awsvpc' })), ContainerSpecError);
    assert.equal(buildOciSpec(input({}, {}, { pidMode: 'host', allowedHostAccess: ['pidMode:host'] })).linux.namespaces.some((n) => n.type === 'pid'), false);
    assert.equal(buildOciSpec(input({}, {}, { ipcMode: 'host', allowedHostAccess: ['ipcMode:host'] })).linux.namespaces.some((n) => n.type === 'ipc'), false);
    assert.deepEqual(buildOciSpec(input({ pidNamespacePath: '/proc/42/ns/pid' })).linux.namespaces[0], { type: 'pid', path: '/proc/42/ns/pid' });
  });

  it('capabilities: add/drop, drop ALL, add ALL, privileged (Docker semantics)', () => {
    const caps = (c: object, allowed: string[] = [...PRIVILEGED_CAPABILITIES]) => buildOciSpec(input({}, c, { allowedPrivilegedCapabilities: allowed })).process.capabilities.bounding;
    assert.deepEqual(new Set(caps({ capabilitiesAdd: ['CAP_NET_ADMIN'], capabilitiesDrop: ['CAP_CHOWN', 'CAP_MKNOD'] })),
      new Set([...DEFAULT_CAPABILITIES.filter((x) => x !== 'CAP_CHOWN' && x !== 'CAP_MKNOD'), 'CAP_NET_ADMIN']));
    assert.deepEqual(caps({ capabilitiesDrop: ['ALL'], capabilitiesAdd: ['CAP_NET_BIND_SERVICE'] }), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(caps({ capabilitiesAdd: ['ALL'], capabilitiesDrop: ['CAP_SYS_ADMIN'] }).length, ALL_CAPABILITIES.length - 1);
    assert.deepEqual(caps({ privileged: true }), [...ALL_CAPABILITIES]);
    // privileged drops the masks (CAP_SYS_ADMIN could unmount them anyway), keeps NNP and seccomp.
    const p = buildOciSpec(input({}, { privileged: true }, { allowedPrivilegedCapabilities: [...PRIVILEGED_CAPABILITIES] }));
    assert.deepEqual([p.linux.maskedPaths, p.linux.readonlyPaths], [[], []]);
    assert.equal(p.process.noNewPrivileges, true);
    assert.ok(p.linux.seccomp);
    // "all" is what the agent itself holds (CAP_SYS_RESOURCE is missing in some sandboxes)...
    const limited = { ...host, boundingCapabilities: ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE') };
    assert.equal(buildOciSpec(input({ host: limited }, { privileged: true }, { allowedPrivilegedCapabilities: [...PRIVILEGED_CAPABILITIES] })).process.capabilities.bounding.includes('CAP_SYS_RESOURCE'), false);
    // ...and asking for a capability it lacks explicitly is an error, not a silent drop.
    assert.throws(() => buildOciSpec(input({ host: limited }, { capabilitiesAdd: ['SYS_RESOURCE'] }, { allowedPrivilegedCapabilities: ['CAP_SYS_RESOURCE'] })), /CAP_SYS_RESOURCE.*bounding set/);
    assert.throws(() => buildOciSpec(input({}, { capabilitiesAdd: ['CAP_FLY'] })), ContainerSpecError);
  });

  it('privilege gate: a capability outside the default set must be allowed by the provider tag', () => {
    assert.throws(() => buildOciSpec(input({}, { capabilitiesAdd: ['SYS_ADMIN'] })), (e: unknown) =>
      e instanceof PrivilegedCapabilityError && e.capabilities.join() === 'CAP_SYS_ADMIN' &&
      /needs capability CAP_SYS_ADMIN/.test(e.message) && /berth:privileged-capabilities/.test(e.message));
    assert.doesNotThrow(() => buildOciSpec(input({}, { capabilitiesAdd: ['SYS_ADMIN'] }, { allowedPrivilegedCapabilities: ['CAP_SYS_ADMIN'] })));
    // Re-adding a default capability needs nothing.
    assert.doesNotThrow(() => buildOciSpec(input({}, { capabilitiesDrop: ['ALL'], capabilitiesAdd: ['CAP_CHOWN'] })));
    // add ALL needs every privileged capability allowed; privileged too.
    assert.throws(() => buildOciSpec(input({}, { capabilitiesAdd: ['ALL'] }, { allowedPrivilegedCapabilities: ['CAP_SYS_ADMIN'] })), PrivilegedCapabilityError);
    assert.throws(() => buildOciSpec(input({}, { privileged: true }, { allowedPrivilegedCapabilities: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'] })),
      (e: unknown) => e instanceof PrivilegedCapabilityError && /privileged/.test(e.message) && /berth:privileged-capabilities=ALL/.test(e.message));
  });

  it('process: Docker entrypoint/cmd rules, env merge, cwd, user', () => {
    const img: ImageConfig = { ...image, entrypoint: ['/entry'], cmd: ['default'] };
    assert.deepEqual(buildOciSpec(input({ image: img })).process.args, ['/entry', 'default']);
    assert.deepEqual(buildOciSpec(input({ image: img }, { command: ['x'] })).process.args, ['/entry', 'x']);
    assert.deepEqual(buildOciSpec(input({ image: img }, { entryPoint: ['/other'] })).process.args, ['/other']); // Cmd dropped
    assert.deepEqual(buildOciSpec(input({ image: img }, { entryPoint: ['/other'], command: ['y'] })).process.args, ['/other', 'y']);
    assert.throws(() => buildOciSpec(input({ image: { env: [], labels: {} } })), /no command specified/);

    const env = buildOciSpec(input({}, { environment: [{ name: 'A', value: 'container' }, { name: 'B', value: 'x=y' }] })).process.env;
    assert.deepEqual(env, ['PATH=/usr/bin:/bin', 'LANG=C', 'HOSTNAME=instance-1', 'A=container', 'B=x=y', 'HOME=/root']);
    assert.ok(buildOciSpec(input({ image: { cmd: ['x'], env: [], labels: {} } })).process.env.includes('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'));

    assert.equal(buildOciSpec(input({ image: { ...image, workingDir: '/srv' } })).process.cwd, '/srv');
    assert.equal(buildOciSpec(input({ image: { ...image, workingDir: '/srv' } }, { workingDirectory: '/app' })).process.cwd, '/app');
    assert.throws(() => buildOciSpec(input({}, { workingDirectory: 'rel' })), ContainerSpecError);

    const user = (u?: string, img = image) => buildOciSpec(input({ image: img }, u === undefined ? {} : { user: u })).process.user;
    assert.deepEqual(user(), { uid: 0, gid: 0 });
    assert.deepEqual(user('app'), { uid: 1000, gid: 1000, additionalGids: [2000] });
    assert.deepEqual(user(undefined, { ...image, user: 'app' }), { uid: 1000, gid: 1000, additionalGids: [2000] });
    assert.deepEqual(user('1000:65534'), { uid: 1000, gid: 65534 });
    assert.deepEqual(user('4242'), { uid: 4242, gid: 0 }); // unknown numeric uid: fine, gid 0 (Docker)
    assert.deepEqual(user('app:nogroup'), { uid: 1000, gid: 65534 });
    assert.throws(() => user('ghost'), /unable to find user ghost/);
    assert.throws(() => user('app:ghosts'), /unable to find group ghosts/);
    assert.ok(buildOciSpec(input({}, { user: 'app' })).process.env.includes('HOME=/home/app'));
  });

  it('resources: cpu shares (ECS semantics), task quota, memory limit and reservation', () => {
    assert.deepEqual([0, 1, 2, 512, 1024, 300000].map(cpuShares), [2, 2, 2, 512, 1024, 262144]);
    const r = buildOciSpec(input({}, { cpu: 256, memory: 128, memoryReservation: 64 }, { cpu: 512, memory: 512 })).linux.resources;
    assert.deepEqual(r.cpu, { shares: 256, quota: 50000, period: 100000 });
    assert.deepEqual(r.memory, { limit: 128 * 1024 * 1024, reservation: 64 * 1024 * 1024 });
    // No container limit: the task's is the ceiling.
    assert.deepEqual(buildOciSpec(input({}, {}, { memory: 512 })).linux.resources.memory, { limit: 512 * 1024 * 1024 });
    assert.equal(buildOciSpec(input()).linux.resources.memory, undefined);
    assert.throws(() => buildOciSpec(input({}, { memory: 64, memoryReservation: 128 })), /memoryReservation/);
    assert.deepEqual(buildOciSpec(input({ pidsLimit: 100 })).linux.resources.pids, { limit: 100 });
  });

  it('ulimits: mapped, validated, never above the agent’s own hard limits', () => {
    const rl = (u: { name: string; softLimit: number; hardLimit: number }[]) => buildOciSpec(input({}, { ulimits: u })).process.rlimits;
    assert.deepEqual(rl([{ name: 'nofile', softLimit: 1024, hardLimit: 4096 }]), [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 }]);
    assert.deepEqual(rl([{ name: 'core', softLimit: -1, hardLimit: -1 }]), [{ type: 'RLIMIT_CORE', soft: -1, hard: -1 }]);
    assert.throws(() => rl([{ name: 'nofile', softLimit: 1024, hardLimit: 65536 }]), /nofile hardLimit 65536 is above this instance's hard limit 20000/);
    assert.throws(() => rl([{ name: 'nofile', softLimit: -1, hardLimit: -1 }]), /unlimited/);
    assert.throws(() => rl([{ name: 'nofile', softLimit: 2048, hardLimit: 1024 }]), /softLimit 2048 is above its hardLimit 1024/);
    assert.throws(() => rl([{ name: 'files', softLimit: 1, hardLimit: 1 }]), /unknown ulimit 'files'/);
    // RLIM_INFINITY is written as the exact uint64 runc expects.
    const text = serializeOciConfig(buildOciSpec(input({}, { ulimits: [{ name: 'core', softLimit: -1, hardLimit: -1 }] })));
    assert.match(text, /"soft": 18446744073709551615,\s*"hard": 18446744073709551615/);
  });

  it('mounts: volumes (ro/rw), /etc files, init; bad mount points refused', () => {
    const s = buildOciSpec(input({
      volumePaths: { data: '/data/tasks/t/volumes/data', host: '/srv/host' },
      etcFiles: { hosts: '/data/tasks/t/etc/hosts', hostname: '/data/tasks/t/etc/hostname', resolvConf: '/data/tasks/t/etc/resolv.conf' },
      initBinary: '/usr/bin/tini-static',
    }, {
      initProcessEnabled: true, command: ['serve'],
      mountPoints: [{ sourceVolume: 'data', containerPath: '/var/data', readOnly: false }, { sourceVolume: 'host', containerPath: '/host', readOnly: true }],
    }, { volumes: [{ name: 'data' }, { name: 'host', hostSourcePath: '/srv/host' }] }));
    const byDest = Object.fromEntries(s.mounts.map((m) => [m.destination, m]));
    assert.deepEqual(byDest['/var/data'], { destination: '/var/data', type: 'bind', source: '/data/tasks/t/volumes/data', options: ['rbind', 'rprivate', 'nosuid', 'nodev', 'rw'] });
    assert.deepEqual(byDest['/host']?.options, ['rbind', 'rprivate', 'nosuid', 'nodev', 'ro']);
    assert.equal(byDest['/etc/resolv.conf']?.source, '/data/tasks/t/etc/resolv.conf');
    assert.equal(byDest[INIT_PATH_IN_CONTAINER]?.source, '/usr/bin/tini-static');
    assert.deepEqual(s.process.args, [INIT_PATH_IN_CONTAINER, '--', 'serve']);
    assert.deepEqual(byDest['/sys'], { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
    assert.throws(() => buildOciSpec(input({}, { initProcessEnabled: true })), /tini/);
    assert.throws(() => buildOciSpec(input({}, { mountPoints: [{ sourceVolume: 'nope', containerPath: '/x', readOnly: false }] })), /not a volume of the task/);
    assert.throws(() => buildOciSpec(input({ volumePaths: { v: '/v' } }, { mountPoints: [{ sourceVolume: 'v', containerPath: 'x/../..', readOnly: false }] }, { volumes: [{ name: 'v' }] })), /absolute/);
    // A read-only root makes the task's /etc files read-only too.
    const ro = buildOciSpec(input({ etcFiles: { hosts: '/h' } }, { readonlyRootFilesystem: true }));
    assert.equal(ro.root.readonly, true);
    assert.deepEqual(ro.mounts.find((m) => m.destination === '/etc/hosts')?.options, ['rbind', 'rprivate', 'ro']);
  });

  it('SELinux: a per-task label only on a host that has SELinux', () => {
    const a = buildOciSpec(input({ host: { ...host, selinux: true } }));
    const b = buildOciSpec(input({ host: { ...host, selinux: true } }, {}, { taskId: 'another-task' }));
    assert.match(a.process.selinuxLabel!, /^system_u:system_r:container_t:s0:c\d+,c\d+$/);
    assert.match(a.linux.mountLabel!, /^system_u:object_r:container_file_t:s0:c\d+,c\d+$/);
    assert.notEqual(a.process.selinuxLabel, b.process.selinuxLabel);
    assert.equal(buildOciSpec(input({ host: { ...host, selinux: true } })).process.selinuxLabel, a.process.selinuxLabel);
  });
});
