// The TLS listener in FIPS mode: the aws CLI works over it (self-signed certificate via
// AWS_CA_BUNDLE); clients offering only non-approved protocol versions or cipher suites are
// refused; /healthz says truthfully whether Node's OpenSSL FIPS provider is active.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ConnectionOptions } from 'node:tls';
import { getFips } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';

let berth: TestBerth;
let endpoint: URL;
let ca: string;

before(async () => {
  berth = await startTestBerth({ BERTH_TLS_PORT: '0', BERTH_FIPS: '1' });
  const info = JSON.parse(readFileSync(join(berth.dataDir, 'server.json'), 'utf8')) as { tlsEndpoint: string };
  endpoint = new URL(info.tlsEndpoint);
  ca = join(berth.dataDir, 'tls', 'cert.pem');
});
after(async () => { await berth?.cleanup(); });

/** Connects with these TLS client options; resolves to the negotiated suite or the error. */
function handshake(opts: ConnectionOptions): Promise<{ ok: true; protocol: string; cipher: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: endpoint.hostname, port: Number(endpoint.port), ca: readFileSync(ca), servername: 'localhost', ...opts }, () => {
      resolve({ ok: true, protocol: socket.getProtocol() ?? '', cipher: socket.getCipher().standardName });
      socket.end();
    });
    socket.on('error', (e) => resolve({ ok: false, error: e.message }));
  });
}

test('FIPS mode: approved TLS 1.2 and 1.3 suites are accepted, others refused', async () => {
  const t12 = await handshake({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' });
  assert.deepEqual(t12, { ok: true, protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384' });
  const t13 = await handshake({ minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256' });
  assert.deepEqual(t13, { ok: true, protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256' });
  // ChaCha20-Poly1305 is not FIPS-approved, in TLS 1.2 or 1.3.
  const chacha12 = await handshake({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305' });
  assert.equal(chacha12.ok, false);
  const chacha13 = await handshake({ minVersion: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256' });
  assert.equal(chacha13.ok, false);
  // CBC suites and old protocol versions neither.
  const cbc = await handshake({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA' });
  assert.equal(cbc.ok, false);
  const old = await handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
  assert.equal(old.ok, false);
});

test('the aws CLI over the TLS endpoint, recorded with its TLS details', () => {
  const r = berth.aws(['ecs', 'create-cluster', '--cluster-name', 'over-tls', '--endpoint-url', endpoint.origin], { env: { AWS_CA_BUNDLE: ca } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.json.cluster.clusterName, 'over-tls');
  const insecure = berth.aws(['kms', 'list-keys', '--endpoint-url', endpoint.origin, '--no-verify-ssl']);
  assert.equal(insecure.status, 0, insecure.stderr);
  const events = berth.aws(['cloudtrail', 'lookup-events', '--lookup-attributes', 'AttributeKey=EventName,AttributeValue=CreateCluster']).json.Events;
  const rec = JSON.parse(events[0].CloudTrailEvent);
  assert.match(rec.tlsDetails.tlsVersion, /^TLSv1\.[23]$/);
  assert.match(rec.tlsDetails.cipherSuite, /AES_(128|256)_GCM/);
});

test('healthz reports FIPS honestly: the mode, and whether the OpenSSL FIPS provider is active here', async () => {
  const res = await fetch(`${berth.creds.endpoint}/healthz`);
  const h = await res.json() as any;
  assert.equal(h.fips.mode, true);
  assert.equal(h.tls.fipsMode, true);
  // This test process runs the same Node binary: Berth must say what crypto.getFips() says.
  assert.equal(h.fips.opensslFipsProviderActive, getFips() === 1);
  if (getFips() !== 1) assert.match(h.fips.detail, /NOT active/);
  assert.match(berth.output, /FIPS: Node's OpenSSL [\d.]+ FIPS provider is (NOT )?active/);
});
