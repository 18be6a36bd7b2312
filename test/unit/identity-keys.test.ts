import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/store.js';
import { MasterKey } from '../../src/identity/master-key.js';
import { KeyStore, SEALED_PREFIX } from '../../src/identity/keys.js';

test('values sealed per kmsKeyId open only in their scope, with the master key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-keys-'));
  try {
    const store = new SqliteStore(dir);
    const master = MasterKey.fromBytes(randomBytes(32));
    const keys = new KeyStore(store, master);
    const sealed = keys.seal('111/us-east-1', 'alias/exec', 'secret transcript line');
    assert.ok(sealed.startsWith(SEALED_PREFIX));
    assert.ok(!sealed.includes('secret'));
    assert.equal(keys.open('111/us-east-1', sealed), 'secret transcript line');
    assert.equal(keys.openIfSealed('111/us-east-1', sealed), 'secret transcript line');
    assert.equal(keys.openIfSealed('111/us-east-1', 'plain'), 'plain');
    // Another account, a tampered value, another key id: nothing opens.
    assert.equal(keys.open('222/us-east-1', sealed), undefined);
    const tampered = sealed.slice(0, -4) + (sealed.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    assert.equal(keys.open('111/us-east-1', tampered), undefined);
    assert.notEqual(KeyStore.keyId('alias/a'), KeyStore.keyId('alias/b'));
    // One data key per kmsKeyId, reused; a fresh KeyStore (restart) still opens old values.
    const again = keys.seal('111/us-east-1', 'alias/exec', 'second');
    assert.equal(again.slice(0, SEALED_PREFIX.length + 32), sealed.slice(0, SEALED_PREFIX.length + 32));
    assert.equal(new KeyStore(store, master).open('111/us-east-1', again), 'second');
    // Without the master key the stored data key is useless.
    assert.equal(new KeyStore(store, MasterKey.fromBytes(randomBytes(32))).open('111/us-east-1', sealed), undefined);
    store.close();
    for (const f of readdirSync(dir)) assert.ok(!readFileSync(join(dir, f)).includes('secret transcript line'), f);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
