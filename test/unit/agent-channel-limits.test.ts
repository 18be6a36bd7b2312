// The agent channel's pure parts: pre-authentication slots per source, log batch splitting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PreAuthCounter, peerAddress } from '../../src/gateway/limits.js';
import { AGENT_LOG_BATCH_BYTES, splitLogEvents } from '../../src/agent/agent.js';

test('unauthenticated connections: a few per source, a cap in all, slots given back', () => {
  const c = new PreAuthCounter({ perSource: 2, unauthenticated: 3 });
  assert.equal(c.admit('10.0.0.1'), true);
  assert.equal(c.admit('10.0.0.1'), true);
  assert.equal(c.admit('10.0.0.1'), false, 'a third from one source');
  assert.equal(c.admit('10.0.0.2'), true);
  assert.equal(c.admit('10.0.0.3'), false, 'over the cap in all');
  c.release('10.0.0.1');
  assert.equal(c.admit('10.0.0.3'), true);
  assert.equal(c.unauthenticated, 3);
  assert.equal(peerAddress('::ffff:10.0.0.9'), '10.0.0.9');
});

test('log batches are split under the limit, in order, at least one event each', () => {
  const events = Array.from({ length: 50 }, (_, i) => ({ timestamp: i, message: 'x'.repeat(20_000) }));
  const parts = splitLogEvents(events);
  assert.ok(parts.length > 1);
  assert.deepEqual(parts.flat(), events);
  for (const p of parts) assert.ok(Buffer.byteLength(JSON.stringify(p)) <= AGENT_LOG_BATCH_BYTES + 2);
  const big = [{ timestamp: 0, message: '\u0001'.repeat(AGENT_LOG_BATCH_BYTES) }];
  assert.deepEqual(splitLogEvents(big), [big], 'one event alone over the limit is sent alone');
  assert.deepEqual(splitLogEvents([]), []);
});
