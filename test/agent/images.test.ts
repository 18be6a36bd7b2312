// Image pulls from a real registry (Debian's docker-registry on 127.0.0.1) into an instance's
// OCI layout: by tag, by digest, through a loopback forward, coalesced, verified.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CannotPullContainerError } from '../../src/agent/runtime/errors.js';
import { ImageStore } from '../../src/agent/runtime/images.js';
import { buildAndPush, buildImage, pushImage } from '../helpers/image.js';
import { freePort } from '../helpers/registry.js';
import { cannotRunContainers, Sandbox } from './fixtures.js';

describe('image pulls', { skip: cannotRunContainers() }, () => {
  const sb = new Sandbox();
  let digest: string;

  before(async () => {
    await sb.start();
    digest = buildAndPush(sb.registry.address, 'tools/busybox:1.0', { entrypoint: ['/bin/echo'], cmd: ['hi'], env: ['PATH=/bin', 'A=1'], user: 'app', workingDir: '/tmp' });
  });
  after(() => sb.cleanup());

  it('the test image is reproducible (same bytes, same digest)', () => {
    const a = buildImage({ cmd: ['x'] });
    const b = buildImage({ cmd: ['x'] });
    try { assert.equal(a.digest, b.digest); } finally { a.cleanup(); b.cleanup(); }
  });

  it('pulls by tag: resolves the registry digest, unpacks the rootfs, reads the image config', async (t) => {
    const t0 = Date.now();
    const img = await sb.images.pull(`${sb.registry.address}/tools/busybox:1.0`);
    t.diagnostic(`pull + unpack of a ${Math.round(readdirSync(img.rootfs).length)}-entry busybox image: ${Date.now() - t0} ms`);
    assert.equal(img.digest, digest);
    assert.ok(existsSync(join(img.rootfs, 'bin', 'busybox')));
    assert.equal(readFileSync(join(img.rootfs, 'etc', 'passwd'), 'utf8').split('\n')[1]?.split(':')[0], 'app');
    assert.deepEqual(img.config, { entrypoint: ['/bin/echo'], cmd: ['hi'], env: ['PATH=/bin', 'A=1'], user: 'app', workingDir: '/tmp', labels: {} });
  });

  it('pulls by digest through a loopback forward, in a fresh layout; concurrent pulls share one', async () => {
    const store = new ImageStore({ dataDir: join(sb.dataDir, 'other'), registryForwards: { '127.0.0.1:5999': sb.registry.address } });
    const ref = `127.0.0.1:5999/tools/busybox@${digest}`;
    const [a, b, c] = await Promise.all([store.pull(ref), store.pull(ref), store.pull(ref)]);
    assert.equal(a.digest, digest);
    assert.equal(a, b);
    assert.equal(b, c);
    assert.deepEqual(readdirSync(join(sb.dataDir, 'other', 'images', 'unpacked')), [digest.slice('sha256:'.length)]);
    // tag + digest: the digest wins (as in Docker) and the cached unpack is reused.
    assert.equal((await store.pull(`127.0.0.1:5999/tools/busybox:whatever@${digest}`)).rootfs, a.rootfs);
  });

  it('refuses a digest the registry does not have, and an unknown repository', async () => {
    await assert.rejects(sb.images.pull(`${sb.registry.address}/tools/busybox@sha256:${'0'.repeat(64)}`),
      (e: unknown) => e instanceof CannotPullContainerError && e.kind === 'not-found' && e.message.startsWith('CannotPullContainerError: '));
    await assert.rejects(sb.images.pull(`${sb.registry.address}/nope:1`), (e: unknown) => e instanceof CannotPullContainerError && e.kind === 'not-found');
  });

  it('refuses content whose digest does not match the reference', async () => {
    // A lying registry: serves the same manifest whatever digest is asked for. The digest
    // asked for must not be here already (content present by digest needs no registry).
    const wanted = buildImage({ cmd: ['never-pulled'] });
    const wantedDigest = wanted.digest;
    wanted.cleanup();
    const other = buildImage({ cmd: ['other'] });
    const manifest = readFileSync(join(other.layout, 'blobs', 'sha256', other.digest.slice(7)));
    other.cleanup();
    const port = await freePort();
    const server: Server = createServer((req, res) => {
      if (req.url === '/v2/') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); return; }
      if (/\/manifests\//.test(req.url ?? '')) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': manifest.length });
        res.end(req.method === 'HEAD' ? undefined : manifest);
        return;
      }
      res.writeHead(404); res.end();
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      await assert.rejects(sb.images.pull(`127.0.0.1:${port}/liar@${wantedDigest}`),
        (e: unknown) => e instanceof CannotPullContainerError && e.kind === 'digest-mismatch');
    } finally {
      server.close();
    }
  });

  it('reports an unreachable registry (nothing listening, unknown host)', async () => {
    const port = await freePort();
    await assert.rejects(sb.images.pull(`127.0.0.1:${port}/x:1`), (e: unknown) => e instanceof CannotPullContainerError && e.kind === 'unreachable' && /registry 127\.0\.0\.1:\d+ unreachable/.test(e.message));
    await assert.rejects(sb.images.pull(`registry.invalid:${port}/x:1`), (e: unknown) => e instanceof CannotPullContainerError && e.kind === 'unreachable');
  });

  it('runs skopeo in the given pull network namespace (where the host\'s loopback registry is out of reach)', async () => {
    const netns = `berth-images-test-${process.pid}`;
    execFileSync('ip', ['netns', 'add', netns]);
    try {
      const store = new ImageStore({ dataDir: join(sb.dataDir, 'in-netns'), pullNetns: `/run/netns/${netns}` });
      await assert.rejects(store.pull(`${sb.registry.address}/tools/busybox:1.0`),
        (e: unknown) => e instanceof CannotPullContainerError && e.kind === 'unreachable' && /connection refused|network is unreachable/.test(e.message));
    } finally {
      execFileSync('ip', ['netns', 'del', netns]);
    }
  });

  it('pushes what it built (helper round trip)', () => {
    const img = buildImage({ cmd: ['true'] });
    try { assert.equal(pushImage(img, sb.registry.address, 'roundtrip:1'), img.digest); } finally { img.cleanup(); }
  });
});
