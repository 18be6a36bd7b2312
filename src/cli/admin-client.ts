// The `berth` CLI's client for a running Berth's own API, signed with the administrator key.
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { readServerInfo } from '../server.js';
import { SqliteStore } from '../store/store.js';
import { Credentials } from '../identity/credentials.js';
import { MasterKey } from '../identity/master-key.js';

const Sha256 = Hash.bind(null, 'sha256') as never;

export async function callAdmin(dataDir: string, region: string, action: string, input: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const info = readServerInfo(dataDir);
  if (!info) throw new Error(`no Berth is running with data in ${dataDir}; start it with 'npm start'`);
  const store = new SqliteStore(dataDir);
  let admin;
  try { admin = new Credentials(store, MasterKey.load({ create: false })).adminKey(); } finally { store.close(); }
  if (!admin) throw new Error('no administrator key yet');
  const url = new URL(info.endpoint);
  const body = JSON.stringify(input);
  const signer = new SignatureV4({ credentials: { accessKeyId: admin.accessKeyId, secretAccessKey: admin.secret }, region, service: 'berth', sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', query: {},
    headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `Berth_20261101.${action}` }, body,
  } as never) as unknown as { headers: Record<string, string> };
  const res = await fetch(`${info.endpoint}/`, { method: 'POST', headers: signed.headers, body });
  const out = await res.json() as Record<string, any>;
  if (!res.ok) throw new Error(`${out.__type}: ${out.message}`);
  return out;
}

/** `90s`, `15m`, `6h`, `14d` or plain seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhdw]?)$/.exec(text.trim());
  if (!m) throw new Error(`'${text}' is not a duration; use e.g. 90s, 15m, 6h, 14d or 2w`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2] as '' | 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}
