// The pure decisions behind the control plane's guards: whether server.json's pid is still
// Berth (zombie, reused pid), the data disk's state, and what runs on a short disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStat, recordedServer, type ProcessView } from '../../src/server-process.js';
import { diskState, MIN_ROOM_BYTES } from '../../src/store/disk-reserve.js';
import { admittedOnDisk } from '../../src/audit/disk-guard.js';

const stat = (state: string, start: number, comm = 'node') => `4242 (${comm}) ${state} 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 11 0 ${start} 1000 100`;
const view = (text: string | undefined, cmdline = ''): ProcessView => ({ stat: () => text, cmdline: () => cmdline });

test('parseStat reads the state and start time, whatever the command name holds', () => {
  assert.deepEqual(parseStat(stat('S', 987654)), { state: 'S', startTime: 987654 });
  assert.deepEqual(parseStat(stat('Z', 12, 'a b) (c')), { state: 'Z', startTime: 12 });
  assert.equal(parseStat('garbage'), undefined);
});

test('recordedServer: gone, zombie, reused pid, an older server.json, and the live Berth', () => {
  assert.equal(recordedServer({ pid: 4242, startTime: 5 }, view(undefined)).running, false);
  const zombie = recordedServer({ pid: 4242, startTime: 5 }, view(stat('Z', 5)));
  assert.equal(zombie.running, false);
  assert.match((zombie as { why: string }).why, /not yet reaped/);
  const reused = recordedServer({ pid: 4242, startTime: 5 }, view(stat('S', 900)));
  assert.equal(reused.running, false);
  assert.match((reused as { why: string }).why, /another process/);
  assert.equal(recordedServer({ pid: 4242, startTime: 5 }, view(stat('S', 5))).running, true);
  // No start time recorded (an older Berth): the command line decides.
  assert.equal(recordedServer({ pid: 4242 }, view(stat('S', 5), 'sleep\u0000120')).running, false);
  assert.equal(recordedServer({ pid: 4242 }, view(stat('S', 5), 'node\u0000/opt/berth/dist/src/cli/main.js\u0000up')).running, true);
});

test('diskState: ok with room, short below the reserve, exhausted with no room for a record', () => {
  const MB = 1024 * 1024;
  assert.equal(diskState(100 * MB, 64 * MB, 64 * MB), 'ok');
  assert.equal(diskState(10 * MB, 64 * MB, 64 * MB), 'short');
  assert.equal(diskState(0, 64 * MB, 64 * MB), 'short');
  assert.equal(diskState(0, MIN_ROOM_BYTES - 1, 64 * MB), 'exhausted');
  // Without a reserve, short only when nearly nothing is left.
  assert.equal(diskState(10 * MB, 0, 0), 'ok');
  assert.equal(diskState(100 * 1024, 200 * 1024, 0), 'short');
});

test('on a short disk: reads and calls that free resources run; writes that add data do not; nothing on an exhausted one', () => {
  for (const [service, action] of [['ecs', 'DescribeTaskDefinition'], ['ecs', 'StopTask'], ['ecs', 'DeleteService'], ['logs', 'DeleteLogGroup'], ['cloudtrail', 'LookupEvents'], ['ssm', 'TerminateSession']]) {
    assert.equal(admittedOnDisk('short', service!, action!), true, `${service}:${action}`);
    assert.equal(admittedOnDisk('exhausted', service!, action!), false);
  }
  for (const [service, action] of [['ecs', 'CreateCluster'], ['ecs', 'RunTask'], ['ecs', 'RegisterTaskDefinition'], ['logs', 'PutLogEvents']]) {
    assert.equal(admittedOnDisk('short', service!, action!), false, `${service}:${action}`);
    assert.equal(admittedOnDisk('ok', service!, action!), true);
  }
});
