import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProviderSettings, PRIVILEGED_TAG, SINGLE_TASK_TAG } from '../../src/domain/provider-settings.js';
import { PRIVILEGED_CAPABILITIES } from '../../src/domain/capabilities.js';

test('defaults: multi-task, no privileged capabilities', () => {
  assert.deepEqual(parseProviderSettings([{ key: 'team', value: 'a' }]), { singleTaskMode: false, privilegedCapabilities: [] });
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
