// Accounts and access keys. The first start creates a default account with an
// administrator key; `berth env` prints it. Secrets are stored sealed by the master key.
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { MasterKey } from './master-key.js';
import { ApiError } from '../domain/errors.js';

export interface Account { accountId: string; name: string; createdAt: number }

export interface AccessKeyRecord {
  accessKeyId: string;
  accountId: string;
  /** The IAM-style principal the key belongs to, e.g. arn:aws:iam::123456789012:root. */
  principal: string;
  userName: string;
  status: 'Active' | 'Inactive';
  createdAt: number;
  sealedSecret: string;
  /** Temporary credentials (STS AssumeRole, `ASIA…` keys): their session. */
  session?: SessionInfo;
}

/** What a temporary access key carries besides its secret. */
export interface SessionInfo {
  /** SHA-256 (hex) of the session token the client must present as X-Amz-Security-Token. */
  tokenHash: string;
  issuedAt: number;
  /** Epoch ms on the server clock after which the credentials are refused. */
  expiresAt: number;
  /** The role assumed, e.g. arn:aws:iam::123456789012:role/BerthOperator. */
  roleArn: string;
  roleName: string;
  sessionName: string;
  /** Who assumed the role (ARN). */
  sourceArn: string;
  /** Session policy passed to AssumeRole, if any. */
  policy?: string;
}

export interface Principal {
  accountId: string;
  accessKeyId: string;
  /** ARN without partition-specific prefix resolved: `iam::<account>:root` style path. */
  principal: string;
  userName: string;
}

const GLOBAL = 'global';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function newAccessKeyId(prefix: 'AKIA' | 'ASIA' = 'AKIA'): string {
  let s: string = prefix;
  const bytes = randomBytes(16);
  for (const b of bytes) s += ALNUM[b % 32];
  return s;
}

export function newSecretAccessKey(): string {
  return randomBytes(30).toString('base64').replace(/\+/g, 'A').replace(/\//g, 'B');
}

export function newAccountId(): string {
  let s = String(randomInt(1, 10));
  for (let i = 0; i < 11; i++) s += String(randomInt(0, 10));
  return s;
}

export class Credentials {
  private readonly secrets = new Map<string, { secret: string; record: AccessKeyRecord }>();
  private secretsGeneration = -1;

  constructor(private readonly store: Store, private readonly masterKey: MasterKey) {}

  /** Creates the default account and its administrator key once; returns the admin key id. */
  bootstrap(now: number): { account: Account; accessKeyId: string; created: boolean } {
    return this.store.tx(() => {
      const existing = this.store.get<{ accountId: string; accessKeyId: string }>('bootstrap', GLOBAL, 'admin');
      if (existing) {
        const account = this.store.get<Account>('account', GLOBAL, existing.accountId)!;
        return { account, accessKeyId: existing.accessKeyId, created: false };
      }
      const account: Account = { accountId: newAccountId(), name: 'default', createdAt: now };
      this.store.put('account', GLOBAL, account.accountId, account);
      const { record } = this.createAccessKey(account.accountId, 'root', `iam::${account.accountId}:root`, now);
      this.store.put('bootstrap', GLOBAL, 'admin', { accountId: account.accountId, accessKeyId: record.accessKeyId });
      return { account, accessKeyId: record.accessKeyId, created: true };
    });
  }

  createAccessKey(accountId: string, userName: string, principal: string, now: number): { record: AccessKeyRecord; secret: string } {
    const accessKeyId = newAccessKeyId();
    const secret = newSecretAccessKey();
    const record: AccessKeyRecord = {
      accessKeyId, accountId, principal, userName, status: 'Active', createdAt: now,
      sealedSecret: this.masterKey.seal(secret, `access-key:${accessKeyId}`),
    };
    this.store.put('access-key', GLOBAL, accessKeyId, record, accountId);
    return { record, secret };
  }

  adminKey(): { accessKeyId: string; secret: string; accountId: string } | undefined {
    const b = this.store.get<{ accountId: string; accessKeyId: string }>('bootstrap', GLOBAL, 'admin');
    if (!b) return undefined;
    const found = this.lookup(b.accessKeyId);
    return found && { accessKeyId: b.accessKeyId, secret: found.secret, accountId: b.accountId };
  }

  /** The secret for an active key, cached after the first unseal. */
  lookup(accessKeyId: string): { secret: string; record: AccessKeyRecord } | undefined {
    // Any change to access keys — here or by another process, e.g. `berth operator-key`
    // retiring an old key — empties the cache, so a deleted key stops working at once.
    const generation = this.store.generation(['access-key']);
    if (generation !== this.secretsGeneration) { this.secrets.clear(); this.secretsGeneration = generation; }
    const cached = this.secrets.get(accessKeyId);
    if (cached) return cached;
    const record = this.store.get<AccessKeyRecord>('access-key', GLOBAL, accessKeyId);
    if (!record || record.status !== 'Active') return undefined;
    const secret = this.masterKey.open(record.sealedSecret, `access-key:${accessKeyId}`).toString('utf8');
    const entry = { secret, record };
    this.secrets.set(accessKeyId, entry);
    return entry;
  }

  /** Forget cached secrets (after a key is deleted or deactivated). */
  invalidate(accessKeyId: string): void {
    this.secrets.delete(accessKeyId);
  }

  // IAM access keys and STS temporary credentials (src/iam) -------------------------------

  /** Every key of an account (long-term and temporary). */
  keysOf(accountId: string): AccessKeyRecord[] {
    return this.store.list<AccessKeyRecord>('access-key', GLOBAL, { parent: accountId });
  }

  record(accessKeyId: string): AccessKeyRecord | undefined {
    return this.store.get<AccessKeyRecord>('access-key', GLOBAL, accessKeyId);
  }

  /** Deletes a key; requests signed with it fail from now on. */
  deleteAccessKey(accessKeyId: string): boolean {
    const gone = this.store.delete('access-key', GLOBAL, accessKeyId);
    this.invalidate(accessKeyId);
    return gone;
  }

  setStatus(accessKeyId: string, status: AccessKeyRecord['status']): void {
    const r = this.record(accessKeyId);
    if (!r) return;
    r.status = status;
    this.store.put('access-key', GLOBAL, accessKeyId, r, r.accountId);
    this.invalidate(accessKeyId);
  }

  /** Temporary credentials: an `ASIA…` key, its secret and a session token (stored hashed). */
  createSessionKey(accountId: string, principal: string, userName: string, session: Omit<SessionInfo, 'tokenHash'>):
    { record: AccessKeyRecord; secret: string; sessionToken: string } {
    const accessKeyId = newAccessKeyId('ASIA');
    const secret = newSecretAccessKey();
    const sessionToken = randomBytes(96).toString('base64');
    const record: AccessKeyRecord = {
      accessKeyId, accountId, principal, userName, status: 'Active', createdAt: session.issuedAt,
      sealedSecret: this.masterKey.seal(secret, `access-key:${accessKeyId}`),
      session: { ...session, tokenHash: createHash('sha256').update(sessionToken).digest('hex') },
    };
    this.store.put('access-key', GLOBAL, accessKeyId, record, accountId);
    return { record, secret, sessionToken };
  }

  /**
   * Checks X-Amz-Security-Token against the key: temporary keys need their own token and must
   * not have expired (server clock); long-term keys must come without one. `query` selects
   * the AWS Query error codes (IAM, STS) instead of the JSON ones.
   */
  checkSessionToken(record: AccessKeyRecord, token: string | undefined, now: number, query = false): void {
    const invalid = () => new ApiError(query ? 'InvalidClientTokenId' : 'UnrecognizedClientException',
      'The security token included in the request is invalid.', 403);
    if (!record.session) {
      if (token !== undefined && token !== '') throw invalid();
      return;
    }
    if (token === undefined || token === '') throw invalid();
    const presented = createHash('sha256').update(token).digest();
    const expected = Buffer.from(record.session.tokenHash, 'hex');
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) throw invalid();
    if (now >= record.session.expiresAt) {
      throw new ApiError(query ? 'ExpiredToken' : 'ExpiredTokenException', 'The security token included in the request is expired', 403);
    }
  }

  /** Removes temporary keys that expired before `before`. */
  reapSessions(accountId: string, before: number): number {
    let n = 0;
    for (const r of this.keysOf(accountId)) {
      if (r.session && r.session.expiresAt < before) { this.deleteAccessKey(r.accessKeyId); n++; }
    }
    return n;
  }
}
