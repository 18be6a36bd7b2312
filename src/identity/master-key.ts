// Secrets at rest are sealed with AES-256-GCM under a master key that lives outside the
// data directory: BERTH_MASTER_KEY (base64, 32 bytes) or a key file (BERTH_MASTER_KEY_FILE,
// default ~/.config/berth/master.key, created on first start with mode 0600).
// A copy of the data directory alone therefore reveals no secret.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export class MasterKey {
  private constructor(private readonly key: Buffer) {}

  static defaultFile(): string {
    return process.env.BERTH_MASTER_KEY_FILE ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'berth', 'master.key');
  }

  /** Loads the master key, creating the key file when neither source exists. */
  static load(options: { create: boolean } = { create: true }): MasterKey {
    const fromEnv = process.env.BERTH_MASTER_KEY;
    if (fromEnv) {
      const key = Buffer.from(fromEnv, 'base64');
      if (key.length !== 32) throw new Error('BERTH_MASTER_KEY must be 32 bytes, base64-encoded');
      return new MasterKey(key);
    }
    const file = MasterKey.defaultFile();
    if (!existsSync(file)) {
      if (!options.create) throw new Error(`no master key at ${file}; start Berth once with \`berth up\` to create it`);
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    }
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`master key file ${file} does not hold 32 base64-encoded bytes`);
    return new MasterKey(key);
  }

  static fromBytes(key: Buffer): MasterKey {
    if (key.length !== 32) throw new Error('master key must be 32 bytes');
    return new MasterKey(key);
  }

  /** A 32-byte key for one purpose (e.g. `audit-seal`), derived from the master key (HMAC-SHA256). */
  derive(purpose: string): Buffer {
    return createHmac('sha256', this.key).update(`berth-derived-key\0${purpose}`).digest();
  }

  /** Seals `plaintext`; `context` is bound as associated data (e.g. the record's id). */
  seal(plaintext: string | Buffer, context: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(context));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    return 'v1:' + Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64');
  }

  open(sealed: string, context: string): Buffer {
    if (!sealed.startsWith('v1:')) throw new Error('unknown sealed format');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    d.setAAD(Buffer.from(context));
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]);
  }
}
