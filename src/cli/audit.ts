// `berth audit verify|export`: reads the audit trail straight from the database (Berth may
// be running: WAL lets readers in), so it works even when the API is down.
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { exportTrail, verifyTrail } from '../audit/index.js';
import { MasterKey } from '../identity/master-key.js';

export function auditCommand(dataDir: string, args: string[]): number {
  const file = join(dataDir, 'berth.db');
  if (!existsSync(file)) {
    process.stderr.write(`berth audit: no Berth data in ${dataDir}.\n`);
    return 1;
  }
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'").get();
    if (!hasTable) { process.stderr.write('berth audit: this database has no audit trail yet (start Berth once).\n'); return 1; }
    if (args[0] === 'verify') {
      let key: Buffer | undefined;
      try { key = MasterKey.load({ create: false }).derive('audit-seal'); } catch (e) {
        process.stderr.write(`berth audit verify: ${(e as Error).message}; checking the hash chain only (not the seals).\n`);
      }
      const r = verifyTrail(db, key);
      if (r.problem) {
        process.stdout.write(`TAMPERED at record ${r.problem.seq}: ${r.problem.message}\n` +
          `(${r.records} records read; the chain is intact up to record ${r.head.seq}${r.head.seq ? `, hash ${r.head.hash}` : ''})\n`);
        return 1;
      }
      process.stdout.write(`OK: ${r.records} records, chain intact${r.sealsChecked ? ', every seal verifies' : ' (seals not checked: no master key)'}; ` +
        `head record ${r.head.seq} hash ${r.head.hash}\n` +
        'Keep the head elsewhere: removing the newest records cannot be seen from the file alone.\n');
      return 0;
    }
    if (args[0] === 'export') {
      const i = args.indexOf('--account');
      const account = i >= 0 ? args[i + 1] : undefined;
      for (const line of exportTrail(db, account)) process.stdout.write(line + '\n');
      return 0;
    }
    process.stderr.write('usage: berth audit verify | export [--account ID]\n');
    return 2;
  } finally {
    db.close();
  }
}
