// Customer managed keys: a KMS-compatible subset (AWS JSON 1.1, target prefix TrentService,
// signing name `kms`) and the envelope sealing the rest of Berth uses for data at rest.
//
// Key hierarchy:
//   master key (outside the data dir, identity/master-key.ts)
//     └─ seals each KMS key's 256-bit material (kind `kms-key`, `sealedMaterial`)
//          ├─ Encrypt/Decrypt/GenerateDataKey: AES-256-GCM under the key material;
//          │  ciphertext blobs are self-describing (see blob.ts: magic, key id, iv, tag)
//          └─ wraps one data key per (account/region, key) (kind `kms-data-key`) that
//             seals Berth's own data at rest: log events of groups with a kmsKeyId, ECS
//             Exec transcripts, task definition secrets (`berth:kms:v1:` values, seal/open)
// Every use checks the key's state first: Disabled → DisabledException, PendingDeletion →
// KMSInvalidStateException, deleted → NotFoundException; so disabling a key makes
// everything under it unreadable at once (cached data keys are never used without that
// check). Deletion happens after the pending window on the server clock: a timer per
// scheduled key, a sweep at start-up and on every reaper pass, and a check on every use.
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import type { Handler, RequestContext } from '../api/context.js';
import { ApiError, ERROR_CODES, type ErrorCode } from '../api/errors.js';
import { formatArn, parseArn, partitionOf, scopeKey } from '../domain/arn.js';
import type { Clock, Timer } from '../domain/clock.js';
import type { MasterKey } from '../identity/master-key.js';
import type { Store } from '../store/store.js';
import { decodeBlob, encodeBlob, MAX_PLAINTEXT_BYTES } from './blob.js';
import { checkKeyPolicy, defaultKeyPolicy, policyDenies } from './policy.js';

export const DAY_MS = 24 * 60 * 60 * 1000;
const KEY = 'kms-key';
const ALIAS = 'kms-alias';
const DATA_KEY = 'kms-data-key';
/** A value sealed at rest by Berth: `berth:kms:v1:<keyId>:<base64(iv | tag | ciphertext)>`. */
export const SEALED_PREFIX = 'berth:kms:v1:';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

export interface KmsKeyRecord {
  keyId: string;
  arn: string;
  accountId: string;
  createdAt: number;
  description: string;
  state: KeyState;
  keyManager: 'CUSTOMER' | 'AWS';
  deletionDate?: number;
  pendingWindowInDays?: number;
  policy: string;
  tags: { TagKey: string; TagValue: string }[];
  /** The key material, sealed with the master key (context `kms-key:<scope>:<keyId>`). */
  sealedMaterial: string;
}

interface AliasRecord { aliasName: string; aliasArn: string; targetKeyId: string; createdAt: number; updatedAt: number }
interface DataKeyRecord { keyId: string; wrapped: string; createdAt: number }

export const kmsError = (code: ErrorCode, message: string, status: number = ERROR_CODES[code]) => new ApiError(code, message, status);
const notFound = (m: string) => kmsError('NotFoundException', m);
const validation = (m: string) => kmsError('ValidationException', m);
const seconds = (ms: number) => ms / 1000;

/** Whether `text` is a value `Kms.seal` produced. */
export const isSealed = (text: string): boolean => text.startsWith(SEALED_PREFIX);

function canonicalContext(ctx: Record<string, string> | undefined): string {
  if (!ctx) return '';
  return JSON.stringify(Object.keys(ctx).sort().map((k) => [k, ctx[k]]));
}

export class Kms {
  /** Key records by `scope\0keyId` (this process is the only writer). */
  private readonly records = new Map<string, KmsKeyRecord | null>();
  private readonly materials = new Map<string, Buffer>();
  private readonly dataKeys = new Map<string, Buffer>();
  private readonly timers = new Map<string, Timer>();

  constructor(private readonly store: Store, private readonly master: MasterKey, private readonly clock: Clock,
    private readonly log: (line: string) => void = () => {}) {
    this.sweep();
    for (const { scope, body } of store.listAll<KmsKeyRecord>(KEY)) if (body.state === 'PendingDeletion') this.arm(scope, body);
  }

  // Keys ------------------------------------------------------------------------------------

  private record(scope: string, keyId: string): KmsKeyRecord | undefined {
    const k = `${scope}\0${keyId}`;
    let r = this.records.get(k);
    if (r === undefined) {
      r = this.store.get<KmsKeyRecord>(KEY, scope, keyId) ?? null;
      this.records.set(k, r);
    }
    if (r && r.state === 'PendingDeletion' && r.deletionDate! <= this.clock.now()) {
      this.destroy(scope, r);
      return undefined;
    }
    return r ?? undefined;
  }

  private save(scope: string, r: KmsKeyRecord): void {
    this.store.put(KEY, scope, r.keyId, r);
    this.records.set(`${scope}\0${r.keyId}`, r);
  }

  private arnOf(scope: string, resource: string): string {
    const [account, region] = scope.split('/') as [string, string];
    return formatArn({ partition: partitionOf(region), service: 'kms', region, account, resource });
  }

  /**
   * A key id, key ARN, alias name or alias ARN → the key in `scope` (any state but deleted).
   * Throws NotFoundException naming what was asked for.
   */
  resolve(scope: string, ref: string): KmsKeyRecord {
    let id = ref;
    if (ref.startsWith('arn:')) {
      const a = parseArn(ref);
      const [account, region] = scope.split('/');
      if (!a || a.service !== 'kms') throw kmsError('InvalidArnException', `'${ref}' is not a KMS key or alias ARN.`);
      if (a.account !== account || a.region !== region) throw notFound(`Key '${ref}' does not exist in account ${account}, region ${region}.`);
      id = a.resource.startsWith('key/') ? a.resource.slice(4) : a.resource;
    }
    if (id.startsWith('alias/')) {
      const alias = this.store.get<AliasRecord>(ALIAS, scope, id);
      const r = alias && this.record(scope, alias.targetKeyId);
      if (!r) throw notFound(`Alias ${this.arnOf(scope, id)} is not found.`);
      return r;
    }
    const r = UUID.test(id) ? this.record(scope, id) : undefined;
    if (!r) throw notFound(`Key '${this.arnOf(scope, `key/${id}`)}' does not exist`);
    return r;
  }

  /** Throws the KMS error for a key that cannot be used for cryptographic operations. */
  private requireUsable(r: KmsKeyRecord): void {
    if (r.state === 'Disabled') throw kmsError('DisabledException', `${r.arn} is disabled.`);
    if (r.state === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${r.arn} is pending deletion.`);
  }

  private material(scope: string, r: KmsKeyRecord): Buffer {
    const k = `${scope}\0${r.keyId}`;
    let m = this.materials.get(k);
    if (!m) {
      m = this.master.open(r.sealedMaterial, `kms-key:${scope}:${r.keyId}`);
      this.materials.set(k, m);
    }
    return m;
  }

  private newKey(scope: string, opts: { description?: string; policy?: string; keyManager?: 'CUSTOMER' | 'AWS'; tags?: KmsKeyRecord['tags'] }): KmsKeyRecord {
    const keyId = randomUUID();
    const account = scope.split('/')[0]!;
    const arn = this.arnOf(scope, `key/${keyId}`);
    const r: KmsKeyRecord = {
      keyId, arn, accountId: account, createdAt: this.clock.now(), description: opts.description ?? '', state: 'Enabled',
      keyManager: opts.keyManager ?? 'CUSTOMER', policy: opts.policy ?? defaultKeyPolicy(arn, account), tags: opts.tags ?? [],
      sealedMaterial: this.master.seal(randomBytes(32), `kms-key:${scope}:${keyId}`),
    };
    this.save(scope, r);
    return r;
  }

  /** The AWS managed key behind `alias/aws/<service>` in `scope`, created on first use. */
  managedKey(scope: string, service: string): KmsKeyRecord {
    const aliasName = `alias/aws/${service}`;
    return this.store.tx(() => {
      const alias = this.store.get<AliasRecord>(ALIAS, scope, aliasName);
      const existing = alias && this.record(scope, alias.targetKeyId);
      if (existing) return existing;
      const r = this.newKey(scope, { description: `Default key that protects my ${service.toUpperCase()} data when no other key is defined`, keyManager: 'AWS' });
      const now = this.clock.now();
      this.store.put<AliasRecord>(ALIAS, scope, aliasName, { aliasName, aliasArn: this.arnOf(scope, aliasName), targetKeyId: r.keyId, createdAt: now, updatedAt: now }, r.keyId);
      return r;
    });
  }

  private metadata(r: KmsKeyRecord) {
    return {
      AWSAccountId: r.accountId, KeyId: r.keyId, Arn: r.arn, CreationDate: seconds(r.createdAt), Enabled: r.state === 'Enabled',
      Description: r.description, KeyUsage: 'ENCRYPT_DECRYPT', KeyState: r.state,
      ...(r.deletionDate !== undefined ? { DeletionDate: seconds(r.deletionDate), PendingDeletionWindowInDays: r.pendingWindowInDays } : {}),
      Origin: 'AWS_KMS', KeyManager: r.keyManager, CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT', KeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'], MultiRegion: false,
    };
  }

  /** The key policy says no to this caller and action (see policy.ts for what is evaluated). */
  private checkPolicy(ctx: RequestContext, r: KmsKeyRecord, action: string): void {
    const caller = `arn:${ctx.scope.partition}:${ctx.principal.principal}`;
    if (policyDenies(r.policy, caller, ctx.scope.account, `kms:${action}`)) {
      throw kmsError('AccessDeniedException', `User: ${caller} is not authorized to perform: kms:${action} on resource: ${r.arn} with an explicit deny in a resource-based policy`);
    }
  }

  /** Resolves a key for an API action: exists, and its policy does not deny the caller. */
  private forAction(ctx: RequestContext, ref: string, action: string): { scope: string; r: KmsKeyRecord } {
    const scope = scopeKey(ctx.scope);
    const r = this.resolve(scope, ref);
    this.checkPolicy(ctx, r, action);
    return { scope, r };
  }

  // Cryptography ------------------------------------------------------------------------------

  private encryptWith(scope: string, r: KmsKeyRecord, plaintext: Buffer, context: Record<string, string> | undefined): Buffer {
    this.requireUsable(r);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.material(scope, r), iv);
    c.setAAD(Buffer.from(`${scope}\0${r.keyId}\0${canonicalContext(context)}`));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    return encodeBlob(r.keyId, iv, c.getAuthTag(), ct);
  }

  private decryptWith(scope: string, blob: Buffer, context: Record<string, string> | undefined, expected?: KmsKeyRecord): { r: KmsKeyRecord; plaintext: Buffer } {
    const parsed = decodeBlob(blob);
    if (!parsed) throw kmsError('InvalidCiphertextException', 'The ciphertext is not a ciphertext blob of this KMS (malformed or truncated).');
    if (expected && expected.keyId !== parsed.keyId) {
      throw kmsError('IncorrectKeyException', `The key ID in the request does not identify the KMS key that encrypted the ciphertext (${this.arnOf(scope, `key/${parsed.keyId}`)}).`);
    }
    const r = this.record(scope, parsed.keyId);
    if (!r) throw notFound(`Key '${this.arnOf(scope, `key/${parsed.keyId}`)}' does not exist`);
    this.requireUsable(r);
    try {
      const d = createDecipheriv('aes-256-gcm', this.material(scope, r), parsed.iv);
      d.setAAD(Buffer.from(`${scope}\0${r.keyId}\0${canonicalContext(context)}`));
      d.setAuthTag(parsed.tag);
      return { r, plaintext: Buffer.concat([d.update(parsed.ciphertext), d.final()]) };
    } catch {
      throw kmsError('InvalidCiphertextException', 'The ciphertext does not authenticate: it was altered, or the encryption context differs from the one used to encrypt it.');
    }
  }

  /** The (unwrapped) data key Berth seals its own data with under key `r`. */
  private dataKey(scope: string, r: KmsKeyRecord): Buffer {
    this.requireUsable(r);
    const k = `${scope}\0${r.keyId}`;
    const cached = this.dataKeys.get(k);
    if (cached) return cached;
    const context = { 'berth:purpose': 'data-at-rest' };
    const key = this.store.tx(() => {
      const existing = this.store.get<DataKeyRecord>(DATA_KEY, scope, r.keyId);
      if (existing) return this.decryptWith(scope, Buffer.from(existing.wrapped, 'base64'), context, r).plaintext;
      const fresh = randomBytes(32);
      this.store.put<DataKeyRecord>(DATA_KEY, scope, r.keyId, { keyId: r.keyId, wrapped: this.encryptWith(scope, r, fresh, context).toString('base64'), createdAt: this.clock.now() });
      return fresh;
    });
    this.dataKeys.set(k, key);
    return key;
  }

  /**
   * Seals `plaintext` at rest under the key `keyRef` (id, ARN, alias) names in `scope`.
   * `context` is bound as associated data. Throws the key's KMS error when it is not usable.
   */
  seal(scope: string, keyRef: string, plaintext: string, context = ''): string {
    const r = this.resolve(scope, keyRef);
    const key = this.dataKey(scope, r);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(Buffer.from(`${scope}\0${r.keyId}\0${context}`));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return `${SEALED_PREFIX}${r.keyId}:${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64')}`;
  }

  /**
   * Opens a value `seal` produced in `scope`. Throws NotFoundException (key deleted),
   * DisabledException / KMSInvalidStateException (key not usable, with `what` in the
   * message) or InvalidCiphertextException (altered, or sealed elsewhere).
   */
  open(scope: string, sealed: string, context = '', what = 'this data'): string {
    const rest = sealed.slice(SEALED_PREFIX.length);
    const keyId = rest.slice(0, 36);
    if (!isSealed(sealed) || rest[36] !== ':' || !UUID.test(keyId)) throw kmsError('InvalidCiphertextException', 'Not a value sealed by Berth.');
    const r = this.record(scope, keyId);
    if (!r) throw notFound(`The KMS key ${this.arnOf(scope, `key/${keyId}`)} that protected ${what} was deleted; it cannot be decrypted any more.`);
    if (r.state !== 'Enabled') {
      const e = (() => { try { this.requireUsable(r); } catch (x) { return x as ApiError; } return undefined; })()!;
      throw kmsError(e.code, `The KMS key ${r.arn} that protects ${what} is ${r.state === 'Disabled' ? 'disabled' : 'pending deletion'}; ` +
        `${what} cannot be decrypted until the key is ${r.state === 'Disabled' ? 'enabled (aws kms enable-key)' : 'restored (aws kms cancel-key-deletion, then enable-key)'}.`);
    }
    const raw = Buffer.from(rest.slice(37), 'base64');
    try {
      const d = createDecipheriv('aes-256-gcm', this.dataKey(scope, r), raw.subarray(0, 12));
      d.setAAD(Buffer.from(`${scope}\0${r.keyId}\0${context}`));
      d.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    } catch {
      throw kmsError('InvalidCiphertextException', `${what} does not authenticate under ${r.arn} (altered, or sealed in another account or region).`);
    }
  }

  /** Throws the KMS error when `keyRef` names no usable key of `scope` (before Berth promises to seal under it). */
  check(scope: string, keyRef: string): KmsKeyRecord {
    const r = this.resolve(scope, keyRef);
    this.requireUsable(r);
    return r;
  }

  /** Decrypts a KMS ciphertext blob (base64) of `scope`, as Decrypt does but without an API call. */
  decryptBase64(scope: string, base64: string, what = 'this value'): string {
    const blob = Buffer.from(base64, 'base64');
    const parsed = decodeBlob(blob);
    if (!parsed) throw kmsError('InvalidCiphertextException', `${what} is not a KMS ciphertext blob (base64 CiphertextBlob of aws kms encrypt).`);
    const r = this.record(scope, parsed.keyId);
    if (r && r.state !== 'Enabled') {
      throw kmsError(r.state === 'Disabled' ? 'DisabledException' : 'KMSInvalidStateException',
        `The KMS key ${r.arn} that protects ${what} is ${r.state === 'Disabled' ? 'disabled' : 'pending deletion'}; it cannot be decrypted until the key is enabled.`);
    }
    return this.decryptWith(scope, blob, undefined).plaintext.toString('utf8');
  }

  /** The key id inside a KMS ciphertext blob (base64), when it is one of a key of `scope`. */
  blobKey(scope: string, base64: string): KmsKeyRecord | undefined {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return undefined;
    const parsed = decodeBlob(Buffer.from(base64, 'base64'));
    return parsed ? this.record(scope, parsed.keyId) : undefined;
  }

  // Deletion ----------------------------------------------------------------------------------

  private arm(scope: string, r: KmsKeyRecord): void {
    const k = `${scope}\0${r.keyId}`;
    this.timers.get(k)?.cancel();
    this.timers.set(k, this.clock.after(Math.max(0, r.deletionDate! - this.clock.now()), () => { this.timers.delete(k); this.sweep(); }));
  }

  private destroy(scope: string, r: KmsKeyRecord): void {
    this.store.tx(() => {
      this.store.delete(KEY, scope, r.keyId);
      this.store.delete(DATA_KEY, scope, r.keyId);
      for (const a of this.store.list<AliasRecord>(ALIAS, scope, { parent: r.keyId })) this.store.delete(ALIAS, scope, a.aliasName);
    });
    const k = `${scope}\0${r.keyId}`;
    this.records.set(k, null);
    this.materials.delete(k);
    this.dataKeys.delete(k);
    this.timers.get(k)?.cancel();
    this.timers.delete(k);
    this.log(`kms: key ${r.arn} deleted (its pending window ended ${new Date(r.deletionDate!).toISOString()})`);
  }

  /** Deletes every key whose pending deletion window has ended on the server clock. */
  sweep(now: number = this.clock.now()): number {
    let n = 0;
    for (const { scope, body } of this.store.listAll<KmsKeyRecord>(KEY)) {
      if (body.state === 'PendingDeletion' && body.deletionDate! <= now) { this.destroy(scope, body); n++; }
    }
    return n;
  }

  close(): void {
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
  }

  // The API -----------------------------------------------------------------------------------

  handlers(): Record<string, Handler> {
    return {
      CreateKey: (ctx, i) => this.createKey(ctx, i),
      DescribeKey: (ctx, i: { KeyId: string }) => ({ KeyMetadata: this.metadata(this.forAction(ctx, i.KeyId, 'DescribeKey').r) }),
      ListKeys: (ctx, i) => this.listKeys(ctx, i),
      Encrypt: (ctx, i) => this.encrypt(ctx, i),
      Decrypt: (ctx, i) => this.decrypt(ctx, i),
      GenerateDataKey: (ctx, i) => this.generateDataKey(ctx, i),
      ScheduleKeyDeletion: (ctx, i) => this.scheduleDeletion(ctx, i),
      CancelKeyDeletion: (ctx, i) => this.cancelDeletion(ctx, i),
      EnableKey: (ctx, i: { KeyId: string }) => this.setEnabled(ctx, i.KeyId, true),
      DisableKey: (ctx, i: { KeyId: string }) => this.setEnabled(ctx, i.KeyId, false),
      GetKeyPolicy: (ctx, i) => this.getKeyPolicy(ctx, i),
      PutKeyPolicy: (ctx, i) => this.putKeyPolicy(ctx, i),
      CreateAlias: (ctx, i) => this.createAlias(ctx, i),
      ListAliases: (ctx, i) => this.listAliases(ctx, i),
    };
  }

  private createKey(ctx: RequestContext, i: { Policy?: string; Description?: string; KeyUsage?: string; KeySpec?: string; CustomerMasterKeySpec?: string; Origin?: string; Tags?: { TagKey: string; TagValue: string }[]; MultiRegion?: boolean; CustomKeyStoreId?: string }) {
    if (i.KeyUsage !== undefined && i.KeyUsage !== 'ENCRYPT_DECRYPT') throw kmsError('UnsupportedOperationException', `KeyUsage ${i.KeyUsage} is not supported by Berth; keys are ENCRYPT_DECRYPT (SYMMETRIC_DEFAULT).`);
    const spec = i.KeySpec ?? i.CustomerMasterKeySpec;
    if (spec !== undefined && spec !== 'SYMMETRIC_DEFAULT') throw kmsError('UnsupportedOperationException', `KeySpec ${spec} is not supported by Berth; use SYMMETRIC_DEFAULT (AES-256-GCM).`);
    if (i.Origin !== undefined && i.Origin !== 'AWS_KMS') throw kmsError('UnsupportedOperationException', `Origin ${i.Origin} is not supported by Berth; key material is generated by Berth (AWS_KMS).`);
    if (i.MultiRegion) throw kmsError('UnsupportedOperationException', 'Multi-Region keys are not supported by Berth.');
    if (i.CustomKeyStoreId !== undefined) throw kmsError('UnsupportedOperationException', 'Custom key stores are not supported by Berth.');
    const scope = scopeKey(ctx.scope);
    const caller = `arn:${ctx.scope.partition}:${ctx.principal.principal}`;
    if (i.Policy !== undefined) checkKeyPolicy(i.Policy, caller, ctx.scope.account);
    for (const t of i.Tags ?? []) if (t.TagKey.startsWith('aws:')) throw kmsError('TagException', `Tag keys cannot start with 'aws:' (${t.TagKey}).`);
    const r = this.newKey(scope, { ...(i.Description !== undefined ? { description: i.Description } : {}), ...(i.Policy !== undefined ? { policy: i.Policy } : {}), ...(i.Tags ? { tags: i.Tags } : {}) });
    return { KeyMetadata: this.metadata(r) };
  }

  private listKeys(ctx: RequestContext, i: { Limit?: number; Marker?: string }) {
    const limit = i.Limit ?? 100;
    const scope = scopeKey(ctx.scope);
    const rows = this.store.listFields<{ arn: string; state: string; deletionDate?: number }>(KEY, scope, ['arn', 'state', 'deletionDate'], {
      ...(i.Marker !== undefined ? { after: this.marker(i.Marker) } : {}), limit: limit + 1,
    });
    const now = this.clock.now();
    const live = rows.filter((r) => !(r.state === 'PendingDeletion' && r.deletionDate! <= now));
    const page = live.slice(0, limit);
    const more = rows.length > limit;
    return {
      Keys: page.map((r) => ({ KeyId: r.id, KeyArn: r.arn })),
      Truncated: more,
      ...(more && page.length ? { NextMarker: Buffer.from(page[page.length - 1]!.id).toString('base64url') } : {}),
    };
  }

  private marker(m: string): string {
    const text = Buffer.from(m, 'base64url').toString('utf8');
    if (!text || !/^[\w/:-]+$/.test(text)) throw kmsError('InvalidMarkerException', 'The request contains a marker that is not valid; pass the NextMarker of the previous response.');
    return text;
  }

  private encrypt(ctx: RequestContext, i: { KeyId: string; Plaintext: string; EncryptionContext?: Record<string, string>; EncryptionAlgorithm?: string; DryRun?: boolean }) {
    const { scope, r } = this.forAction(ctx, i.KeyId, 'Encrypt');
    if (i.EncryptionAlgorithm !== undefined && i.EncryptionAlgorithm !== 'SYMMETRIC_DEFAULT') throw kmsError('InvalidKeyUsageException', `${i.EncryptionAlgorithm} is not valid for the symmetric key ${r.arn}; use SYMMETRIC_DEFAULT.`);
    const plaintext = Buffer.from(i.Plaintext, 'base64');
    if (plaintext.length < 1 || plaintext.length > MAX_PLAINTEXT_BYTES) throw validation(`Plaintext must be 1 to ${MAX_PLAINTEXT_BYTES} bytes; got ${plaintext.length}.`);
    this.requireUsable(r);
    if (i.DryRun) throw kmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.', 412);
    return { CiphertextBlob: this.encryptWith(scope, r, plaintext, i.EncryptionContext).toString('base64'), KeyId: r.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  }

  private decrypt(ctx: RequestContext, i: { CiphertextBlob?: string; KeyId?: string; EncryptionContext?: Record<string, string>; EncryptionAlgorithm?: string; DryRun?: boolean; Recipient?: unknown }) {
    if (i.CiphertextBlob === undefined) throw validation('CiphertextBlob is required.');
    if (i.Recipient !== undefined) throw kmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by Berth.');
    const scope = scopeKey(ctx.scope);
    const expected = i.KeyId !== undefined ? this.forAction(ctx, i.KeyId, 'Decrypt').r : undefined;
    const blob = Buffer.from(i.CiphertextBlob, 'base64');
    const parsed = decodeBlob(blob);
    if (parsed && !expected) {
      const r = this.record(scope, parsed.keyId);
      if (r) this.checkPolicy(ctx, r, 'Decrypt');
    }
    const { r, plaintext } = this.decryptWith(scope, blob, i.EncryptionContext, expected);
    if (i.DryRun) throw kmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.', 412);
    return { KeyId: r.arn, Plaintext: plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  }

  private generateDataKey(ctx: RequestContext, i: { KeyId: string; EncryptionContext?: Record<string, string>; NumberOfBytes?: number; KeySpec?: string; DryRun?: boolean; Recipient?: unknown }) {
    const { scope, r } = this.forAction(ctx, i.KeyId, 'GenerateDataKey');
    if (i.Recipient !== undefined) throw kmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by Berth.');
    if ((i.KeySpec === undefined) === (i.NumberOfBytes === undefined)) throw validation('Specify either KeySpec or NumberOfBytes (exactly one).');
    const n = i.NumberOfBytes ?? (i.KeySpec === 'AES_128' ? 16 : 32);
    this.requireUsable(r);
    if (i.DryRun) throw kmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.', 412);
    const key = randomBytes(n);
    return { CiphertextBlob: this.encryptWith(scope, r, key, i.EncryptionContext).toString('base64'), Plaintext: key.toString('base64'), KeyId: r.arn };
  }

  private scheduleDeletion(ctx: RequestContext, i: { KeyId: string; PendingWindowInDays?: number }) {
    const { scope, r } = this.forAction(ctx, i.KeyId, 'ScheduleKeyDeletion');
    const days = i.PendingWindowInDays ?? 30;
    if (days < 7 || days > 30) throw validation(`PendingWindowInDays must be between 7 and 30 days; got ${days}.`);
    if (r.keyManager === 'AWS') throw kmsError('UnsupportedOperationException', `${r.arn} is an AWS managed key; it cannot be scheduled for deletion.`);
    if (r.state === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${r.arn} is pending deletion.`);
    r.state = 'PendingDeletion';
    r.pendingWindowInDays = days;
    r.deletionDate = ctx.clock.now() + days * DAY_MS;
    this.save(scope, r);
    this.arm(scope, r);
    return { KeyId: r.arn, DeletionDate: seconds(r.deletionDate), KeyState: r.state, PendingWindowInDays: days };
  }

  private cancelDeletion(ctx: RequestContext, i: { KeyId: string }) {
    const { scope, r } = this.forAction(ctx, i.KeyId, 'CancelKeyDeletion');
    if (r.state !== 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${r.arn} is not pending deletion (it is ${r.state}).`);
    // As KMS: a key whose deletion is cancelled is Disabled until enabled again.
    r.state = 'Disabled';
    delete r.deletionDate;
    delete r.pendingWindowInDays;
    this.save(scope, r);
    this.timers.get(`${scope}\0${r.keyId}`)?.cancel();
    return { KeyId: r.arn };
  }

  private setEnabled(ctx: RequestContext, ref: string, enabled: boolean) {
    const { scope, r } = this.forAction(ctx, ref, enabled ? 'EnableKey' : 'DisableKey');
    if (r.state === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${r.arn} is pending deletion.`);
    if (r.keyManager === 'AWS') throw kmsError('UnsupportedOperationException', `${r.arn} is an AWS managed key; it cannot be ${enabled ? 'enabled' : 'disabled'}.`);
    r.state = enabled ? 'Enabled' : 'Disabled';
    this.save(scope, r);
    return {};
  }

  private getKeyPolicy(ctx: RequestContext, i: { KeyId: string; PolicyName?: string }) {
    const { r } = this.forAction(ctx, i.KeyId, 'GetKeyPolicy');
    if (i.PolicyName !== undefined && i.PolicyName !== 'default') throw notFound(`No such policy: ${i.PolicyName} (a key has one policy, named default).`);
    return { Policy: r.policy, PolicyName: 'default' };
  }

  private putKeyPolicy(ctx: RequestContext, i: { KeyId: string; PolicyName?: string; Policy: string; BypassPolicyLockoutSafetyCheck?: boolean }) {
    const { scope, r } = this.forAction(ctx, i.KeyId, 'PutKeyPolicy');
    if (i.PolicyName !== undefined && i.PolicyName !== 'default') throw notFound(`No such policy: ${i.PolicyName} (a key has one policy, named default).`);
    if (r.keyManager === 'AWS') throw kmsError('UnsupportedOperationException', `${r.arn} is an AWS managed key; its policy cannot be changed.`);
    const caller = `arn:${ctx.scope.partition}:${ctx.principal.principal}`;
    checkKeyPolicy(i.Policy, caller, ctx.scope.account, i.BypassPolicyLockoutSafetyCheck === true);
    r.policy = i.Policy;
    this.save(scope, r);
    return {};
  }

  private createAlias(ctx: RequestContext, i: { AliasName: string; TargetKeyId: string }) {
    const scope = scopeKey(ctx.scope);
    if (!/^alias\/[a-zA-Z0-9/_-]+$/.test(i.AliasName)) {
      throw kmsError('InvalidAliasNameException', `Alias name '${i.AliasName}' must start with alias/ followed by letters, numbers, /, _ or -.`);
    }
    if (i.AliasName.startsWith('alias/aws/')) throw kmsError('NotAuthorizedException', 'Alias names that begin with alias/aws/ are reserved for AWS managed keys.');
    if (i.TargetKeyId.startsWith('alias/') || /:alias\//.test(i.TargetKeyId)) throw validation('TargetKeyId must be a key id or key ARN, not an alias.');
    const { r } = this.forAction(ctx, i.TargetKeyId, 'CreateAlias');
    if (r.state === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${r.arn} is pending deletion.`);
    return this.store.tx(() => {
      if (this.store.get(ALIAS, scope, i.AliasName)) throw kmsError('AlreadyExistsException', `An alias with the name ${this.arnOf(scope, i.AliasName)} already exists`);
      const now = ctx.clock.now();
      this.store.put<AliasRecord>(ALIAS, scope, i.AliasName, { aliasName: i.AliasName, aliasArn: this.arnOf(scope, i.AliasName), targetKeyId: r.keyId, createdAt: now, updatedAt: now }, r.keyId);
      return {};
    });
  }

  private listAliases(ctx: RequestContext, i: { KeyId?: string; Limit?: number; Marker?: string }) {
    const scope = scopeKey(ctx.scope);
    const limit = i.Limit ?? 100;
    const target = i.KeyId !== undefined ? this.resolve(scope, i.KeyId).keyId : undefined;
    const rows = this.store.list<AliasRecord>(ALIAS, scope, {
      ...(target ? { parent: target } : {}), ...(i.Marker !== undefined ? { after: this.marker(i.Marker) } : {}), limit: limit + 1,
    }).filter((a) => this.record(scope, a.targetKeyId));
    const page = rows.slice(0, limit);
    const more = rows.length > limit;
    return {
      Aliases: page.map((a) => ({ AliasName: a.aliasName, AliasArn: a.aliasArn, TargetKeyId: a.targetKeyId, CreationDate: seconds(a.createdAt), LastUpdatedDate: seconds(a.updatedAt) })),
      Truncated: more,
      ...(more && page.length ? { NextMarker: Buffer.from(page[page.length - 1]!.aliasName).toString('base64url') } : {}),
    };
  }
}

