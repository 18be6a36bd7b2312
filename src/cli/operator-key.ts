// `berth operator-key [--name NAME]`: mints credentials for a fleet operator — a user of the
// operator account (created on first use) that may assume the built-in BerthOperator role in
// every customer account and call the berth:* administration API, and nothing else (see
// src/iam/operator.ts). Prints shell exports, like `berth env`, and how to act in an account.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { configFromEnv } from '../config.js';
import { Credentials } from '../identity/credentials.js';
import { MasterKey } from '../identity/master-key.js';
import { IamDirectory, OPERATOR_ROLE } from '../iam/index.js';
import { readServerInfo } from '../server.js';
import { SqliteStore } from '../store/store.js';

export function operatorKey(args: string[]): void {
  const config = configFromEnv();
  if (!existsSync(join(config.dataDir, 'berth.db'))) {
    process.stderr.write(`berth operator-key: no Berth data in ${config.dataDir}; start it first with 'npm start' (or 'bin/berth up').\n`);
    process.exit(1);
  }
  const i = args.indexOf('--name');
  const name = i >= 0 ? args[i + 1] : 'operator';
  if (!name || !/^[\w+=,.@-]{1,64}$/.test(name)) {
    process.stderr.write('berth operator-key: --name takes a user name of letters, digits and +=,.@_- (at most 64).\n');
    process.exit(2);
  }
  const store = new SqliteStore(config.dataDir);
  try {
    const iam = new IamDirectory(store, new Credentials(store, MasterKey.load({ create: false })));
    const minted = iam.mintOperatorKey(name, Date.now());
    const customers = iam.accounts().filter((a) => a.accountId !== minted.accountId);
    const endpoint = readServerInfo(config.dataDir)?.endpoint ?? `http://${config.host}:${config.port}`;
    const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
    process.stdout.write([
      `# Berth operator ${minted.userName} (arn:aws:iam::${minted.accountId}:user/${minted.userName}, operator account ${minted.accountId}).`,
      `# It can assume ${OPERATOR_ROLE} in a customer account (instance lifecycle, never customer data) and call berth:*.`,
      `export AWS_ENDPOINT_URL=${q(endpoint)}`,
      `export AWS_ACCESS_KEY_ID=${q(minted.accessKeyId)}`,
      `export AWS_SECRET_ACCESS_KEY=${q(minted.secret)}`,
      'unset AWS_SESSION_TOKEN',
      `export AWS_REGION=${q(config.region)}`,
      `export AWS_DEFAULT_REGION=${q(config.region)}`,
      `# Customer accounts: ${customers.map((a) => `${a.accountId} (${a.name})`).join(', ') || 'none yet'}. To act in one:`,
      `#   aws sts assume-role --role-arn arn:aws:iam::${customers[0]?.accountId ?? '<account>'}:role/${OPERATOR_ROLE} --role-session-name "$USER"`,
      '',
    ].join('\n'));
  } finally {
    store.close();
  }
}
