// One error catalog (src/domain/errors.ts): every code Berth can answer with is in it, every
// entry is used, and every named error is used. The compiler already refuses an ApiError
// with a code outside the catalog; this also catches codes built at run time from strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as errors from '../../src/domain/errors.js';

const root = join(import.meta.dirname, '..', '..', '..', 'src');
const sources = (readdirSync(root, { recursive: true }) as string[])
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f, text: readFileSync(join(root, f), 'utf8') }));
const catalogFile = join('domain', 'errors.ts');
const outsideCatalog = sources.filter((s) => s.file !== catalogFile);

test('every error code raised anywhere is in the catalog', () => {
  const raised = /(?:new ApiError|\berror|kmsError|iamError)\(\s*'([^']+)'/g;
  const found = new Set<string>();
  for (const s of sources) for (const m of s.text.matchAll(raised)) found.add(m[1]!);
  assert.ok(found.size > 40, `only ${found.size} codes found: the scan is broken`);
  const missing = [...found].filter((c) => !(c in errors.ERROR_CODES));
  assert.deepEqual(missing, [], 'codes raised but not in ERROR_CODES');
});

test('every catalog code is raised somewhere, and every named error is used', () => {
  const all = sources.map((s) => s.text).join('\n');
  const unusedCodes = Object.keys(errors.ERROR_CODES).filter((c) => (all.match(new RegExp(`'${c.replace(/\./g, '\\.')}'`, 'g')) ?? []).length === 0);
  assert.deepEqual(unusedCodes, [], 'catalog codes nothing raises');
  const named = Object.keys(errors).filter((k) => typeof (errors as Record<string, unknown>)[k] === 'function' && /^[a-z]/.test(k));
  const unusedNamed = named.filter((k) => !outsideCatalog.some((s) => new RegExp(`\\b${k}\\b`).test(s.text)));
  assert.deepEqual(unusedNamed, [], 'named errors nothing uses');
});

test('the statuses are AWS\'s: 4xx for the caller\'s mistakes, 5xx only for Berth\'s', () => {
  for (const [code, status] of Object.entries(errors.ERROR_CODES)) {
    assert.ok(status >= 400 && status < 600, `${code}: ${status}`);
    if (status >= 500) assert.ok(['ServerException', 'ServiceUnavailableException'].includes(code), `${code} answers ${status}`);
  }
  assert.equal(new errors.ApiError('NoSuchEntity', 'x').status, 404);
  assert.equal(errors.toApiError(new TypeError('secret detail')).message.includes('secret'), false);
});
