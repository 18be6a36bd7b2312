// The pure rules behind issue 11's privilege and neighbour boundaries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestedHostAccess } from '../../src/domain/host-access.js';
import { sysctlProblem, sysctlScope } from '../../src/domain/sysctls.js';
import { DEFAULT_TASK_PIDS, MIN_TASK_PIDS, taskMemoryMiB, taskPidsMax } from '../../src/agent/runtime/cgroups.js';

test('host access a task definition asks for', () => {
  assert.deepEqual(requestedHostAccess({ containerDefinitions: [{}] }), []);
  assert.deepEqual(requestedHostAccess({ pidMode: 'task', ipcMode: 'none', containerDefinitions: [{ linuxParameters: { devices: [] } }] }), []);
  assert.deepEqual(requestedHostAccess({ ipcMode: 'host', pidMode: 'host', containerDefinitions: [{}, { linuxParameters: { devices: [{ hostPath: '/dev/fuse' }] } }] }),
    ['pidMode:host', 'ipcMode:host', 'devices']);
});

test('sysctls: namespaced only, each where its namespace is the task\'s own', () => {
  assert.equal(sysctlScope('kernel.shmmax'), 'ipc');
  assert.equal(sysctlScope('fs.mqueue.queues_max'), 'ipc');
  assert.equal(sysctlScope('net.core.somaxconn'), 'net');
  for (const global of ['kernel.panic', 'kernel.core_pattern', 'vm.overcommit_memory', 'fs.file-max', 'kernel.shm_next_id_x', 'net']) {
    assert.ok(sysctlProblem(global, 'awsvpc', undefined), global);
  }
  assert.equal(sysctlProblem('net.ipv4.conf.eth0/1.rp_filter', 'awsvpc', undefined), undefined);
  assert.match(sysctlProblem('net.ipv4.ip_forward', 'host', undefined)!, /host network mode/);
  assert.match(sysctlProblem('kernel.sem', 'awsvpc', 'host')!, /ipcMode host/);
  assert.equal(sysctlProblem('kernel.sem', 'host', undefined), undefined);
  assert.match(sysctlProblem('not a name', 'awsvpc', undefined)!, /not a sysctl name/);
});

test("a task's pids: its memory's share of the pool, at least MIN_TASK_PIDS, never more than the pool", () => {
  const pool = { pids: 3584, memoryMiB: 7936 };
  assert.equal(taskPidsMax(2048, pool), Math.floor(3584 * 2048 / 7936));
  assert.equal(taskPidsMax(64, pool), MIN_TASK_PIDS);
  assert.equal(taskPidsMax(100_000, pool), 3584);
  assert.equal(taskPidsMax(undefined, pool), 3584 / 4);
  assert.equal(taskPidsMax(64, { pids: 100 }), 100);
  assert.equal(taskPidsMax(512, {}), DEFAULT_TASK_PIDS);
  assert.equal(taskMemoryMiB({ memory: 512, containers: [{ memory: 64 }] }), 512);
  assert.equal(taskMemoryMiB({ containers: [{ memory: 64 }, { memoryReservation: 32 }] }), 96);
  assert.equal(taskMemoryMiB({ containers: [{}] }), undefined);
});
