// Raw signed requests, for inputs the SDKs refuse to send (malformed JSON, wrong types,
// unknown actions, oversized bodies) and for tampering with signatures.
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { request } from 'node:http';
import type { Creds } from './berth.js';

const Sha256 = Hash.bind(null, 'sha256') as any;

export interface RawResponse { status: number; headers: Record<string, string | string[] | undefined>; body: string; json: any }

export interface RawOptions {
  target?: string;
  region?: string;
  service?: string;
  signingDate?: Date;
  sign?: boolean;
  secret?: string;
  accessKeyId?: string;
  headers?: Record<string, string>;
  /** Mutate the signed headers before sending. */
  tamper?: (headers: Record<string, string>) => void;
}

export async function raw(creds: Creds, action: string, body: string | Buffer, opts: RawOptions = {}): Promise<RawResponse> {
  const url = new URL(creds.endpoint);
  let headers: Record<string, string> = {
    host: url.host,
    'content-type': 'application/x-amz-json-1.1',
    'x-amz-target': opts.target ?? `AmazonEC2ContainerServiceV20141113.${action}`,
    ...opts.headers,
  };
  // An empty target sends none (AWS Query requests).
  if (opts.target === '') delete headers['x-amz-target'];
  if (opts.sign !== false) {
    const signer = new SignatureV4({
      credentials: { accessKeyId: opts.accessKeyId ?? creds.accessKeyId, secretAccessKey: opts.secret ?? creds.secretAccessKey },
      region: opts.region ?? creds.region, service: opts.service ?? 'ecs', sha256: Sha256, applyChecksum: false,
    });
    const signed: any = await signer.sign({
      method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', query: {}, headers, body,
    } as any, { signingDate: opts.signingDate ?? new Date() });
    headers = {};
    for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = String(v);
  }
  opts.tamper?.(headers);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path: '/', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
