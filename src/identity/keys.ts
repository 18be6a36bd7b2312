// A small key store for data Berth encrypts at rest on a customer's behalf (ECS Exec
// transcripts under the cluster's executeCommandConfiguration.kmsKeyId). For each
// (account/region, kmsKeyId) it keeps one random 256-bit data key, sealed with the master
// key (master-key.ts) and stored in the store (kind `data-key`); values are AES-256-GCM
// sealed under that data key. Without the master key, which lives outside the data dir, a
// copy of the database reveals neither the data keys nor what they sealed.
// The identity work will replace this with a KMS-compatible API; the sealed format names
// its key by id, so stored values stay readable across that change.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { MasterKey } from './master-key.js';

const KIND = 'data-key';
/** Prefix of a value sealed by this store: `berth:aes256gcm:v1:<keyId>:<base64(iv|tag|ciphertext)>`. */
export const SEALED_PREFIX = 'berth:aes256gcm:v1:';

interface DataKeyRecord { keyId: string; kmsKeyId: string; sealedKey: string; createdAt: number }

export class KeyStore {
  private readonly cache = new Map<string, Buffer>();

  constructor(private readonly store: Store, private readonly master: MasterKey, private readonly now: () => number = Date.now) {}

  /** The id Berth gives the data key of `kmsKeyId` (stable, reveals nothing of the key). */
  static keyId(kmsKeyId: string): string {
    return createHash('sha256').update(`berth-data-key\0${kmsKeyId}`).digest('hex').slice(0, 32);
  }

  private context(scope: string, keyId: string): string {
    return `data-key:${scope}:${keyId}`;
  }

  /** The data key for `kmsKeyId` in `scope`, created on first use. */
  private dataKey(scope: string, kmsKeyId: string): { keyId: string; key: Buffer } {
    const keyId = KeyStore.keyId(kmsKeyId);
    const cached = this.cache.get(`${scope}\0${keyId}`);
    if (cached) return { keyId, key: cached };
    const key = this.store.tx(() => {
      const existing = this.store.get<DataKeyRecord>(KIND, scope, keyId);
      if (existing) return this.master.open(existing.sealedKey, this.context(scope, keyId));
      const fresh = randomBytes(32);
      this.store.put<DataKeyRecord>(KIND, scope, keyId, { keyId, kmsKeyId, sealedKey: this.master.seal(fresh, this.context(scope, keyId)), createdAt: this.now() });
      return fresh;
    });
    this.cache.set(`${scope}\0${keyId}`, key);
    return { keyId, key };
  }

  private existingKey(scope: string, keyId: string): Buffer | undefined {
    const cached = this.cache.get(`${scope}\0${keyId}`);
    if (cached) return cached;
    const rec = this.store.get<DataKeyRecord>(KIND, scope, keyId);
    if (!rec) return undefined;
    const key = this.master.open(rec.sealedKey, this.context(scope, keyId));
    this.cache.set(`${scope}\0${keyId}`, key);
    return key;
  }

  /** Seals `plaintext` under the data key of `kmsKeyId`; `context` is bound as associated data. */
  seal(scope: string, kmsKeyId: string, plaintext: string, context = ''): string {
    const { keyId, key } = this.dataKey(scope, kmsKeyId);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(Buffer.from(`${scope}\0${keyId}\0${context}`));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return `${SEALED_PREFIX}${keyId}:${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64')}`;
  }

  /** Opens a value `seal` produced in the same scope; undefined when it is not one or does not authenticate. */
  open(scope: string, sealed: string, context = ''): string | undefined {
    if (!sealed.startsWith(SEALED_PREFIX)) return undefined;
    const rest = sealed.slice(SEALED_PREFIX.length);
    const colon = rest.indexOf(':');
    if (colon !== 32) return undefined;
    const keyId = rest.slice(0, colon);
    try {
      const key = this.existingKey(scope, keyId);
      if (!key) return undefined;
      const raw = Buffer.from(rest.slice(colon + 1), 'base64');
      if (raw.length < 28) return undefined;
      const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      d.setAAD(Buffer.from(`${scope}\0${keyId}\0${context}`));
      d.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }

  /** `text` itself unless it is a value sealed here, which is opened (readers see plaintext). */
  openIfSealed(scope: string, text: string): string {
    if (!text.startsWith(SEALED_PREFIX)) return text;
    return this.open(scope, text) ?? text;
  }
}
