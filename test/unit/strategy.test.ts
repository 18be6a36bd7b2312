import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateStrategy } from '../../src/ecs/strategy.js';
import { validateInstanceRequirements } from '../../src/ecs/instance-requirements.js';
import { ManualClock } from '../../src/domain/clock.js';
import { partitionOf, parseArn, isValidRegion } from '../../src/domain/arn.js';

test('capacity provider strategy rules', () => {
  validateStrategy([{ capacityProvider: 'a', base: 2, weight: 1 }, { capacityProvider: 'b', weight: 3 }], 's');
  assert.throws(() => validateStrategy([{ capacityProvider: 'a', base: 1 }, { capacityProvider: 'b', base: 1, weight: 1 }], 's'), /Only one capacity provider/);
  assert.throws(() => validateStrategy([{ capacityProvider: 'a' }, { capacityProvider: 'a', weight: 1 }], 's'), /more than once/);
  assert.throws(() => validateStrategy([{ capacityProvider: 'a' }, { capacityProvider: 'b' }], 's'), /at least one must have a weight/);
  assert.throws(() => validateStrategy(Array.from({ length: 21 }, (_, i) => ({ capacityProvider: `p${i}`, weight: 1 })), 's'), /at most 20/);
});

test('instance requirements rules', () => {
  validateInstanceRequirements({ vCpuCount: { min: 2, max: 8 }, memoryMiB: { min: 4096 }, allowedInstanceTypes: ['c6i.*', 'm5.large'] });
  assert.throws(() => validateInstanceRequirements({ vCpuCount: { min: 4, max: 2 }, memoryMiB: { min: 0 } }), /vCpuCount.max \(2\) must be greater than or equal/);
  assert.throws(() => validateInstanceRequirements({ vCpuCount: { min: 1 }, memoryMiB: { min: 0 }, allowedInstanceTypes: ['m5.*'], excludedInstanceTypes: ['t3.*'] }), /not both/);
  assert.throws(() => validateInstanceRequirements({ vCpuCount: { min: 1 }, memoryMiB: { min: 0 }, allowedInstanceTypes: ['m5 large'] }), /not an instance type or pattern/);
});

test('manual clock fires timers in order as it advances', () => {
  const clock = new ManualClock(0);
  const fired: string[] = [];
  clock.after(200, () => fired.push('b'));
  clock.after(100, () => fired.push('a'));
  const t = clock.after(150, () => fired.push('x'));
  t.cancel();
  clock.advance(250);
  assert.deepEqual(fired, ['a', 'b']);
  assert.equal(clock.now(), 250);
});

test('partitions and ARNs', () => {
  assert.equal(partitionOf('us-gov-west-1'), 'aws-us-gov');
  assert.equal(partitionOf('us-gov-east-1'), 'aws-us-gov');
  assert.equal(partitionOf('eu-west-1'), 'aws');
  assert.ok(isValidRegion('ap-southeast-2'));
  assert.ok(!isValidRegion('moon'));
  assert.deepEqual(parseArn('arn:aws:ecs:us-east-1:123456789012:task-definition/web:3'),
    { partition: 'aws', service: 'ecs', region: 'us-east-1', account: '123456789012', resource: 'task-definition/web:3' });
});
