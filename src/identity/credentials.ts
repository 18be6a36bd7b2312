// Accounts and access keys. The first start creates a default account with an
// administrator key; `berth env` prints it. Secrets are stored sealed by the master key.
import { randomBytes, randomInt } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { MasterKey } from './master-key.js';

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

export function newAccessKeyId(): string {
  let s = 'AKIA';
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
}
