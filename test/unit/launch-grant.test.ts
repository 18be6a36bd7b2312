import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withinLaunchGrant } from '../../src/agent/launch-grant.js';
import { makeTask } from '../agent/fixtures.js';

test('a desired state cannot allow more than the instance was launched with', () => {
  const forged = makeTask({ allowedPrivilegedCapabilities: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'], allowedHostAccess: ['pidMode:host', 'devices'] });
  const t = withinLaunchGrant(forged, { privilegedCapabilities: ['CAP_NET_ADMIN'], hostAccess: [] });
  assert.deepEqual(t.allowedPrivilegedCapabilities, ['CAP_NET_ADMIN']);
  assert.deepEqual(t.allowedHostAccess, []);
  assert.deepEqual(withinLaunchGrant(forged, { privilegedCapabilities: [], hostAccess: ['devices', 'pidMode:host', 'ipcMode:host'] }).allowedHostAccess, ['pidMode:host', 'devices']);
});
