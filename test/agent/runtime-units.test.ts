// Unit tests of the runtime's small pure pieces: image references, users, rootfs file
// resolution, container ids, host facts parsing.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isRuntimeId, runtimeId } from '../../src/agent/runtime/container-id.js';
import { CannotPullContainerError } from '../../src/agent/runtime/errors.js';
import { capabilitiesFromMask, capabilityMask, parseHardLimits } from '../../src/agent/runtime/host-facts.js';
import { parseImageRef, pullSource } from '../../src/agent/runtime/image-ref.js';
import { readFileInRoot, resolveInRoot } from '../../src/agent/runtime/rootfs-files.js';
import { DEFAULT_CAPABILITIES } from '../../src/domain/capabilities.js';

describe('image references', () => {
  it('normalises like Docker', () => {
    assert.deepEqual(parseImageRef('busybox'), { original: 'busybox', registry: 'docker.io', repository: 'library/busybox', tag: 'latest' });
    assert.deepEqual(parseImageRef('127.0.0.1:5000/a/b:v1'), { original: '127.0.0.1:5000/a/b:v1', registry: '127.0.0.1:5000', repository: 'a/b', tag: 'v1' });
    const d = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseImageRef(`localhost/x:t@${d}`), { original: `localhost/x:t@${d}`, registry: 'localhost', repository: 'x', tag: 't', digest: d });
    assert.equal(parseImageRef('user/app').repository, 'user/app');
    for (const bad of ['UPPER/x', 'x@sha256:123', 'x:', 'a//b']) assert.throws(() => parseImageRef(bad), CannotPullContainerError, bad);
  });

  it('chooses the address and TLS: forwards and loopback are plain HTTP, others TLS unless insecure', () => {
    const fwd = { '127.0.0.1:5000': '10.200.0.1:5000' };
    assert.deepEqual(pullSource(parseImageRef('127.0.0.1:5000/x:1'), fwd, []), { reference: 'docker://10.200.0.1:5000/x:1', address: '10.200.0.1:5000', tlsVerify: false });
    assert.equal(pullSource(parseImageRef('localhost:6000/x'), {}, []).tlsVerify, false);
    assert.equal(pullSource(parseImageRef('registry.example.com/x'), {}, []).tlsVerify, true);
    assert.equal(pullSource(parseImageRef('registry.example.com/x'), {}, ['registry.example.com']).tlsVerify, false);
    const d = `sha256:${'b'.repeat(64)}`;
    assert.equal(pullSource(parseImageRef('registry.example.com/x:1'), {}, [], d).reference, `docker://registry.example.com/x@${d}`);
  });
});

describe('rootfs files', () => {
  it('resolves symlinks inside the rootfs, never outside it', () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-rootfs-'));
    try {
      mkdirSync(join(root, 'etc'));
      mkdirSync(join(root, 'real'));
      writeFileSync(join(root, 'real', 'passwd'), 'inside');
      symlinkSync('/real/passwd', join(root, 'etc', 'passwd'));
      symlinkSync('../../../../etc/shadow', join(root, 'etc', 'group'));
      assert.equal(readFileInRoot(root, '/etc/passwd'), 'inside');
      assert.equal(resolveInRoot(root, '/etc/group'), join(root, 'etc', 'shadow'));
      assert.equal(readFileInRoot(root, '/etc/group'), '');
      symlinkSync('loop', join(root, 'loop'));
      assert.throws(() => resolveInRoot(root, '/loop'), /too many symlinks/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('runtime ids', () => {
  it('are deterministic, short, valid for runc, and distinct for long shared prefixes', () => {
    const a = runtimeId('0123456789abcdef0123456789abcdef', 'web-server-with-a-very-long-name-1');
    assert.equal(a, runtimeId('0123456789abcdef0123456789abcdef', 'web-server-with-a-very-long-name-1'));
    assert.notEqual(a, runtimeId('0123456789abcdef0123456789abcdef', 'web-server-with-a-very-long-name-2'));
    assert.ok(a.length <= 42 && isRuntimeId(a), a);
    assert.ok(isRuntimeId(runtimeId('x', 'Name.With_Odd:chars')));
  });
});

describe('host facts', () => {
  it('capability masks round-trip (Docker defaults = a80425fb)', () => {
    assert.equal(capabilityMask(DEFAULT_CAPABILITIES), '00000000a80425fb');
    assert.deepEqual(new Set(capabilitiesFromMask('00000000a80425fb')), new Set(DEFAULT_CAPABILITIES));
    assert.equal(capabilitiesFromMask('000001fffeffffff').includes('CAP_SYS_RESOURCE'), false);
  });

  it('parses /proc/self/limits', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units     \n' +
      'Max core file size        0                    unlimited            bytes     \n' +
      'Max open files            20000                20000                files     \n';
    assert.deepEqual(parseHardLimits(text), { RLIMIT_CORE: Infinity, RLIMIT_NOFILE: 20000 });
  });
});
