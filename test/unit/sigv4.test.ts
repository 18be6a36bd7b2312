import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { verifySigV4, type SignedRequest } from '../../src/api/sigv4.js';
import { ApiError } from '../../src/api/errors.js';

const Sha256 = Hash.bind(null, 'sha256') as any;
const KEY = { accessKeyId: 'AKIATESTTESTTESTTEST', secretAccessKey: 'secret/secret+secret' };
const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const lookup = (id: string) => (id === KEY.accessKeyId ? KEY.secretAccessKey : undefined);

async function signed(body = '{"clusterName":"a"}', opts: { at?: number; region?: string; service?: string; secret?: string } = {}): Promise<SignedRequest> {
  const signer = new SignatureV4({
    credentials: { ...KEY, secretAccessKey: opts.secret ?? KEY.secretAccessKey },
    region: opts.region ?? 'us-east-1', service: opts.service ?? 'ecs', sha256: Sha256,
  });
  const req: any = await signer.sign({
    method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: 4480, path: '/', query: {},
    headers: { host: '127.0.0.1:4480', 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonEC2ContainerServiceV20141113.CreateCluster' },
    body,
  } as any, { signingDate: new Date(opts.at ?? NOW) });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = String(v);
  return { method: 'POST', path: '/', query: '', headers, body: Buffer.from(body) };
}

async function code(p: Promise<unknown>): Promise<string> {
  try { await p; return 'ok'; } catch (e) { assert.ok(e instanceof ApiError, String(e)); return e.code; }
}

test('a request signed by the SDK signer verifies, with region and service from the scope', async () => {
  const v = await verifySigV4(await signed('{}', { region: 'us-gov-west-1' }), lookup, NOW);
  assert.equal(v.region, 'us-gov-west-1');
  assert.equal(v.service, 'ecs');
  assert.equal(v.accessKeyId, KEY.accessKeyId);
});

test('a tampered body or header fails the signature', async () => {
  const r = await signed();
  assert.equal(await code(verifySigV4({ ...r, body: Buffer.from('{"clusterName":"b"}') }, lookup, NOW)), 'InvalidSignatureException');
  const h = await signed();
  h.headers['x-amz-target'] = 'AmazonEC2ContainerServiceV20141113.DeleteCluster';
  assert.equal(await code(verifySigV4(h, lookup, NOW)), 'InvalidSignatureException');
});

test('wrong secret, unknown key and missing header get their AWS errors', async () => {
  assert.equal(await code(verifySigV4(await signed('{}', { secret: 'nope' }), lookup, NOW)), 'InvalidSignatureException');
  assert.equal(await code(verifySigV4(await signed(), () => undefined, NOW)), 'UnrecognizedClientException');
  const r = await signed();
  delete r.headers.authorization;
  assert.equal(await code(verifySigV4(r, lookup, NOW)), 'MissingAuthenticationTokenException');
  const g = await signed();
  g.headers.authorization = 'Basic abc';
  assert.equal(await code(verifySigV4(g, lookup, NOW)), 'IncompleteSignatureException');
});

test('clock skew beyond 15 minutes is refused both ways', async () => {
  const old = await signed('{}', { at: NOW - 16 * 60_000 });
  await assert.rejects(verifySigV4(old, lookup, NOW), /Signature expired: .* is now earlier than/);
  const future = await signed('{}', { at: NOW + 16 * 60_000 });
  await assert.rejects(verifySigV4(future, lookup, NOW), /Signature not yet current/);
  assert.equal(await code(verifySigV4(await signed('{}', { at: NOW - 14 * 60_000 }), lookup, NOW)), 'ok');
});
