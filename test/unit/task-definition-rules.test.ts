import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeTaskDefinition, parseTaskCpu, parseTaskMemory } from '../../src/ecs/task-definition-rules.js';

const base = { family: 'web', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 128 }] };
const mi = { ...base, requiresCompatibilities: ['MANAGED_INSTANCES'] };
const reject = (td: unknown, pattern: RegExp) => assert.throws(() => normalizeTaskDefinition(td as any), (e: any) => e.code === 'ClientException' && pattern.test(e.message));

test('fills AWS defaults and defaults managed-instances tasks to awsvpc', () => {
  const { body, compatibilities } = normalizeTaskDefinition({
    ...mi, containerDefinitions: [{ name: 'app', image: 'busybox', memory: 128, portMappings: [{ containerPort: 80 }], healthCheck: { command: ['CMD', 'true'] } }],
  });
  assert.equal(body.networkMode, 'awsvpc');
  const c = body.containerDefinitions[0];
  assert.deepEqual(c.portMappings, [{ containerPort: 80, hostPort: 80, protocol: 'tcp' }]);
  assert.equal(c.essential, true);
  assert.equal(c.cpu, 0);
  assert.deepEqual(c.healthCheck, { interval: 30, timeout: 5, retries: 3, command: ['CMD', 'true'] });
  assert.deepEqual(compatibilities, ['EC2', 'MANAGED_INSTANCES']);
});

test('task cpu and memory accept units and vCPU/GB forms', () => {
  assert.equal(parseTaskCpu('1 vCPU'), 1024);
  assert.equal(parseTaskCpu('.5 vcpu'), undefined);
  assert.equal(parseTaskCpu('512'), 512);
  assert.equal(parseTaskMemory('2 GB'), 2048);
  assert.equal(parseTaskMemory('0.5GB'), 512);
  const { body } = normalizeTaskDefinition({ ...mi, cpu: '1 vCPU', memory: '2 GB' });
  assert.equal(body.cpu, '1024');
  assert.equal(body.memory, '2048');
});

test('rejects what managed instances do not support, saying what to change', () => {
  reject({ ...mi, networkMode: 'bridge' }, /networkMode 'bridge' is not supported on managed instances; use awsvpc or host/);
  reject({ ...mi, ipcMode: 'task' }, /ipcMode 'task' is not supported on managed instances.*berth:host-access=ipcMode:host/);
  reject({ ...mi, ipcMode: 'none' }, /ipcMode 'none' is not supported/);
  assert.equal(normalizeTaskDefinition({ ...mi, ipcMode: 'host' }).body.ipcMode, 'host'); // gated by the provider, at placement
  reject({ ...mi, ephemeralStorage: { sizeInGiB: 30 } }, /ephemeralStorage is not supported/);
  reject({ ...mi, containerDefinitions: [{ ...base.containerDefinitions[0], dnsServers: ['1.1.1.1'] }] }, /dnsServers is not supported/);
  reject({ ...mi, containerDefinitions: [{ ...base.containerDefinitions[0], linuxParameters: { sharedMemorySize: 64 } }] }, /linuxParameters.sharedMemorySize/);
  reject({ ...mi, volumes: [{ name: 'v', host: { sourcePath: '/etc' } }] }, /outside the instance's writable locations/);
  for (const sourcePath of ['/var/lib/../..', '/tmp/./x']) {
    assert.throws(() => normalizeTaskDefinition({ ...mi, volumes: [{ name: 'v', host: { sourcePath } }] } as any),
      (e: any) => e.code === 'InvalidParameterException' && /host.sourcePath .* must not contain '.' or '..'/.test(e.message), sourcePath);
  }
  reject({ ...mi, volumes: [{ name: 'v', dockerVolumeConfiguration: {} }] }, /dockerVolumeConfiguration is not supported/);
  reject({ ...mi, runtimePlatform: { operatingSystemFamily: 'WINDOWS_SERVER_2022_CORE' } }, /use LINUX/);
  reject({ ...mi, containerDefinitions: [{ ...base.containerDefinitions[0], logConfiguration: { logDriver: 'splunk' } }] }, /log driver 'splunk'/);
});

test('without MANAGED_INSTANCES required, the same definition registers but is not MI-compatible', () => {
  const { compatibilities } = normalizeTaskDefinition({ ...base, networkMode: 'bridge' });
  assert.deepEqual(compatibilities, ['EC2']);
});

test('container rules', () => {
  reject({ family: 'f', containerDefinitions: [{ name: 'a', image: 'x' }] }, /At least one of 'memory' or 'memoryReservation' must be specified/);
  reject({ family: 'f', containerDefinitions: [{ name: 'a', memory: 64 }] }, /Container.image should not be null or empty/);
  reject({ family: 'f', containerDefinitions: [{ name: 'a', image: 'x', memory: 64, memoryReservation: 128 }] }, /memoryReservation \(128\) must be less than or equal to memory/);
  reject({ family: 'f', containerDefinitions: [{ name: 'a', image: 'x', memory: 64, essential: false }] }, /at least one essential container/);
  reject({ family: 'f', containerDefinitions: [{ name: 'a', image: 'x', memory: 64 }, { name: 'a', image: 'y', memory: 64 }] }, /used more than once/);
  reject({ family: 'f', containerDefinitions: [{ name: 'a', image: 'x', memory: 64, stopTimeout: 121 }] }, /stopTimeout.*between 0 and 120/);
  reject({ family: 'f', containerDefinitions: [{ name: 'a', image: 'x', memory: 64, linuxParameters: { capabilities: { add: ['SYS_WIZARD'] } } }] }, /not a Linux capability/);
  reject({ family: 'bad family', containerDefinitions: base.containerDefinitions }, /Family contains invalid characters/);
  reject({ family: 'f', memory: '100', containerDefinitions: [{ name: 'a', image: 'x', memory: 64 }] }, /at least 128 MiB/);
  reject({ family: 'f', memory: '256', containerDefinitions: [{ name: 'a', image: 'x', memory: 200 }, { name: 'b', image: 'x', memory: 100 }] }, /exceeds the task memory/);
});

test('dependsOn must name other containers, need health checks for HEALTHY, and not cycle', () => {
  const c = (name: string, dependsOn: unknown[], extra = {}) => ({ name, image: 'x', memory: 64, dependsOn, ...extra });
  reject({ family: 'f', containerDefinitions: [c('a', [{ containerName: 'zz', condition: 'START' }])] }, /must be another container/);
  reject({ family: 'f', containerDefinitions: [c('a', [{ containerName: 'b', condition: 'HEALTHY' }]), c('b', [])] }, /HEALTHY needs container 'b' to define a healthCheck/);
  reject({ family: 'f', containerDefinitions: [c('a', [{ containerName: 'b', condition: 'START' }]), c('b', [{ containerName: 'a', condition: 'START' }])] }, /cycle: a -> b -> a/);
  normalizeTaskDefinition({ family: 'f', containerDefinitions: [c('a', [{ containerName: 'b', condition: 'HEALTHY' }]), c('b', [], { healthCheck: { command: ['CMD-SHELL', 'true'] } })] });
});

test('the 64 KiB size limit is enforced', () => {
  reject({ ...base, containerDefinitions: [{ ...base.containerDefinitions[0], environment: [{ name: 'BIG', value: 'x'.repeat(70_000) }] }] }, /maximum is 65536 bytes/);
});

test('linuxParameters.devices and systemControls: checked at registration', () => {
  const c = base.containerDefinitions[0];
  const withC = (extra: object) => ({ ...mi, containerDefinitions: [{ ...c, ...extra }] });
  reject(withC({ linuxParameters: { devices: [{ hostPath: '/etc/passwd' }] } }), /hostPath '\/etc\/passwd'.*under \/dev\//);
  reject(withC({ linuxParameters: { devices: [{ hostPath: '/dev/fuse', containerPath: 'fuse' }] } }), /containerPath 'fuse'/);
  reject(withC({ linuxParameters: { devices: [{ hostPath: '/dev/fuse', permissions: ['execute'] }] } }), /permission 'execute'/);
  assert.ok(normalizeTaskDefinition(withC({ linuxParameters: { devices: [{ hostPath: '/dev/fuse', permissions: ['read'] }] } })));
  const sysctl = (namespace: string, extra: object = {}) => ({ ...mi, ...extra, containerDefinitions: [{ ...c, systemControls: [{ namespace, value: '1' }] }] });
  assert.throws(() => normalizeTaskDefinition(sysctl('kernel.panic')), (e: Error) => e.name === 'InvalidParameterException' && /kernel\.panic.*not a namespaced sysctl/.test(e.message));
  assert.throws(() => normalizeTaskDefinition(sysctl('net.ipv4.ip_forward', { networkMode: 'host' })), (e: Error) => e.name === 'InvalidParameterException' && /host network mode/.test(e.message));
  assert.throws(() => normalizeTaskDefinition(sysctl('kernel.shmmax', { ipcMode: 'host' })), /ipcMode host/);
  assert.ok(normalizeTaskDefinition(sysctl('net.ipv4.ip_forward', { networkMode: 'awsvpc' })));
  assert.ok(normalizeTaskDefinition(sysctl('fs.mqueue.msg_max', { networkMode: 'host' })));
});
