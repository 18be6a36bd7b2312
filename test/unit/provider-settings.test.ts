import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HOST_ACCESS_TAG, parseProviderSettings, PRIVILEGED_TAG, SINGLE_TASK_TAG } from '../../src/domain/provider-settings.js';
import { PRIVILEGED_CAPABILITIES } from '../../src/domain/capabilities.js';

test('defaults: multi-task, no privileged capabilities', () => {
  assert.deepEqual(parseProviderSettings([{ key: 'team', value: 'a' }]), { singleTaskMode: false, privilegedCapabilities: [], hostAccess: [] });
});

test('single-task mode and capability lists parse in any accepted spelling', () => {
  const s = parseProviderSettings([
    { key: SINGLE_TASK_TAG, value: 'enabled' },
    { key: PRIVILEGED_TAG, value: 'CAP_SYS_ADMIN+net_admin BPF CAP_CHOWN' },
  ]);
  assert.equal(s.singleTaskMode, true);
  assert.deepEqual(s.privilegedCapabilities, ['CAP_BPF', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
  assert.deepEqual(parseProviderSettings([{ key: PRIVILEGED_TAG, value: 'ALL' }]).privilegedCapabilities, [...PRIVILEGED_CAPABILITIES]);
  assert.deepEqual(parseProviderSettings([{ key: PRIVILEGED_TAG, value: 'NONE' }]).privilegedCapabilities, []);
});

test('unknown capabilities, values and reserved keys are rejected', () => {
  assert.throws(() => parseProviderSettings([{ key: PRIVILEGED_TAG, value: 'CAP_SYS_WIZARD' }]), /Unknown Linux capability 'CAP_SYS_WIZARD'/);
  assert.throws(() => parseProviderSettings([{ key: SINGLE_TASK_TAG, value: 'yes' }]), /must be 'enabled' or 'disabled'/);
  assert.throws(() => parseProviderSettings([{ key: 'berth:colour', value: 'x' }]), /Unknown reserved tag key 'berth:colour'/);
});

test('host access: NONE by default, ALL, or a list of kinds in any case; unknown kinds refused', () => {
  assert.deepEqual(parseProviderSettings([{ key: HOST_ACCESS_TAG, value: 'ALL' }]).hostAccess, ['pidMode:host', 'ipcMode:host', 'devices']);
  assert.deepEqual(parseProviderSettings([{ key: HOST_ACCESS_TAG, value: 'NONE' }]).hostAccess, []);
  assert.deepEqual(parseProviderSettings([{ key: HOST_ACCESS_TAG, value: 'devices+pidmode:host' }]).hostAccess, ['pidMode:host', 'devices']);
  assert.throws(() => parseProviderSettings([{ key: HOST_ACCESS_TAG, value: 'networkMode:host' }]), /Unknown host access 'networkMode:host' in tag berth:host-access/);
});
