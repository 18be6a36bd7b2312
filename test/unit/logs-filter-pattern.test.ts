import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMatchAll, matchesPattern, parseFilterPattern } from '../../src/logs/filter-pattern.js';
import { checkGroupName, checkRetention, checkStreamName, formatStreamToken, parseStreamToken, truncateMessage } from '../../src/logs/names.js';

const m = (pattern: string, message: string) => matchesPattern(parseFilterPattern(pattern), message);

test('terms are ANDed, case-sensitive substrings', () => {
  assert.ok(m('ERROR', '[ERROR] disk full'));
  assert.ok(!m('ERROR', '[error] disk full'));
  assert.ok(m('ERROR disk', '[ERROR] disk full'));
  assert.ok(!m('ERROR memory', '[ERROR] disk full'));
  assert.ok(m('', 'anything'));
  assert.ok(m('   ', 'anything'));
  assert.ok(isMatchAll(parseFilterPattern('')));
});

test('quoted phrases, ?-alternatives, -exclusions and %regex%', () => {
  assert.ok(m('"disk full"', 'ERROR: disk full now'));
  assert.ok(!m('"disk full"', 'disk is full'));
  assert.ok(m('"say \\"hi\\""', 'they say "hi" there'));
  assert.ok(m('?ERROR ?WARN', 'WARN low memory'));
  assert.ok(m('?ERROR ?WARN', 'ERROR crash'));
  assert.ok(!m('?ERROR ?WARN', 'INFO fine'));
  assert.ok(m('ERROR -Exception', 'ERROR timeout'));
  assert.ok(!m('ERROR -Exception', 'ERROR NullPointerException'));
  assert.ok(!m('-"health check"', 'GET /health check ok'));
  assert.ok(m('-"health check"', 'GET /orders'));
  assert.ok(m('GET ?"/api" ?"/v2" -"500"', 'GET /v2/items 200'));
  assert.ok(!m('GET ?"/api" ?"/v2" -"500"', 'GET /v2/items 500'));
  assert.ok(m('%status=[45]\\d\\d%', 'status=404 path=/x'));
  assert.ok(!m('%status=[45]\\d\\d%', 'status=200 path=/x'));
  // A lone ? or - is a term of its own.
  assert.ok(m('a - b', 'a - b'));
});

test('unsupported and malformed patterns are refused', () => {
  assert.throws(() => parseFilterPattern('{ $.level = "error" }'), { name: 'InvalidParameterException', message: /JSON and space-delimited patterns are not supported/ });
  assert.throws(() => parseFilterPattern('[ip, user]'), { name: 'InvalidParameterException' });
  assert.throws(() => parseFilterPattern('"open'), { name: 'InvalidParameterException', message: /not closed/ });
  assert.throws(() => parseFilterPattern('%(%'), { name: 'InvalidParameterException', message: /regular expression/ });
});

test('names, retention values, tokens, truncation', () => {
  checkGroupName('/ecs/web-app_1.x#2');
  assert.throws(() => checkGroupName('bad name'), { name: 'InvalidParameterException', message: /regular expression pattern: \[\\.\\-_\/#A-Za-z0-9\]\+/ });
  assert.throws(() => checkGroupName('x'.repeat(513)), { name: 'InvalidParameterException', message: /length/ });
  checkStreamName('web/app/0123 with spaces');
  assert.throws(() => checkStreamName('a:b'), { name: 'InvalidParameterException' });
  assert.throws(() => checkStreamName('a*'), { name: 'InvalidParameterException' });
  for (const d of [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]) checkRetention(d);
  for (const d of [0, 2, 4, 366, 3650, -1]) assert.throws(() => checkRetention(d), { name: 'InvalidParameterException', message: /enum value set: \[1, 3, 5, 7, 14/ });

  const t = formatStreamToken('f', { ts: 1767225600000, id: 42 });
  assert.match(t, /^f\/\d{56}$/);
  assert.deepEqual(parseStreamToken(t), { direction: 'f', position: { ts: 1767225600000, id: 42 } });
  assert.throws(() => parseStreamToken('x/123'), { name: 'InvalidParameterException' });
  assert.throws(() => parseStreamToken('f/' + '9'.repeat(56)), { name: 'InvalidParameterException' });

  assert.equal(truncateMessage('short'), 'short');
  const long = 'é'.repeat(200_000); // 400,000 bytes
  const cut = truncateMessage(long);
  assert.equal(Buffer.byteLength(cut), 256 * 1024);
  assert.ok(!cut.includes('\uFFFD'));
  const odd = 'a' + 'é'.repeat(200_000); // the limit falls inside a character
  const cut2 = truncateMessage(odd);
  assert.equal(Buffer.byteLength(cut2), 256 * 1024 - 1);
  assert.ok(!cut2.includes('\uFFFD'));
});
