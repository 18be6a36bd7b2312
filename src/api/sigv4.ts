// SigV4 verification: recompute the signature with @smithy/signature-v4 (the signer the
// AWS SDKs use) over exactly the headers the client signed, then compare in constant time.
import { SignatureV4, createScope, getCanonicalHeaders, getCanonicalQuery, getSigningKey } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  incompleteSignature, invalidSignature, missingAuthenticationToken, unrecognizedClient,
} from './errors.js';
import { isValidRegion } from '../domain/arn.js';

export interface SignedRequest {
  method: string;
  path: string;
  /** Raw query string without `?`. */
  query: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface VerifiedSignature {
  accessKeyId: string;
  region: string;
  service: string;
  /** X-Amz-Date as epoch ms. */
  signedAt: number;
}

export type SecretLookup = (accessKeyId: string) => string | undefined;

export const MAX_SKEW_MS = 15 * 60 * 1000;

const Sha256 = Hash.bind(null, 'sha256') as unknown as new (secret?: unknown) => InstanceType<typeof Hash>;

const AUTH_PATTERN = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;

/** A request header by its lower-case name: own members only, so `constructor` or `__proto__` is never Object's. */
function header(h: SignedRequest['headers'], name: string): string | undefined {
  if (!Object.prototype.hasOwnProperty.call(h, name)) return undefined;
  const v = h[name];
  if (Array.isArray(v)) return v.join(',');
  return typeof v === 'string' ? v : undefined;
}

/** RFC 9110's token: what a header name may be. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

function parseAmzDate(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  return Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s!);
}

function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function parseQuery(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!query) return out;
  for (const [k, v] of new URLSearchParams(query)) {
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else out[k] = Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/** Signers cache derived signing keys; keep one per (access key, secret). */
const signers = new Map<string, SignatureV4>();

function signerFor(accessKeyId: string, secret: string, region: string, service: string): SignatureV4 {
  const key = `${accessKeyId}\0${secret}\0${region}\0${service}`;
  let s = signers.get(key);
  if (!s) {
    if (signers.size > 10_000) signers.clear();
    s = new SignatureV4({
      credentials: { accessKeyId, secretAccessKey: secret },
      region, service, sha256: Sha256, uriEscapePath: true, applyChecksum: false,
    });
    signers.set(key, s);
  }
  return s;
}

export async function verifySigV4(req: SignedRequest, lookup: SecretLookup, now: number): Promise<VerifiedSignature> {
  const authorization = header(req.headers, 'authorization');
  if (!authorization) {
    if (/(^|&)X-Amz-Signature=/.test(req.query)) {
      throw incompleteSignature('Query-string (presigned) authentication is not accepted for this API; sign the Authorization header.');
    }
    throw missingAuthenticationToken('Missing Authentication Token');
  }
  const m = AUTH_PATTERN.exec(authorization.trim());
  if (!m) {
    throw incompleteSignature(`Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters with the AWS4-HMAC-SHA256 algorithm. Authorization=${authorization.split(' ')[0]}`);
  }
  const [, credential, signedHeadersText, signature] = m as unknown as [string, string, string, string];
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') {
    throw incompleteSignature(`Credential should be scoped to a valid region, service and 'aws4_request'; got '${credential}'.`);
  }
  const [accessKeyId, scopeDate, region, service] = parts as [string, string, string, string];
  if (!isValidRegion(region)) {
    throw incompleteSignature(`Credential should be scoped to a valid region, not '${region}'.`);
  }
  const amzDate = header(req.headers, 'x-amz-date');
  const signedAt = amzDate ? parseAmzDate(amzDate) : undefined;
  if (signedAt === undefined) throw incompleteSignature('Authorization requires an X-Amz-Date header in the form YYYYMMDDTHHMMSSZ.');
  if (amzDate!.slice(0, 8) !== scopeDate) {
    throw invalidSignature(`Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${amzDate!.slice(0, 8)}', from '${amzDate}'.`);
  }
  if (signedAt < now - MAX_SKEW_MS) {
    throw invalidSignature(`Signature expired: ${amzDate} is now earlier than ${formatAmzDate(now - MAX_SKEW_MS)} (${formatAmzDate(now)} - 15 min.)`);
  }
  if (signedAt > now + MAX_SKEW_MS) {
    throw invalidSignature(`Signature not yet current: ${amzDate} is still later than ${formatAmzDate(now + MAX_SKEW_MS)} (${formatAmzDate(now)} + 15 min.)`);
  }
  const secret = lookup(accessKeyId);
  if (secret === undefined) throw unrecognizedClient('The security token included in the request is invalid.');

  const signedHeaders = signedHeadersText.toLowerCase().split(';');
  if (!signedHeaders.includes('host')) throw invalidSignature("'Host' must be a signed header.");
  // No prototype: a signed header named `__proto__` or `constructor` is only a name here.
  const headers = Object.create(null) as Record<string, string>;
  for (const name of signedHeaders) {
    if (!HEADER_NAME.test(name)) throw invalidSignature(`The request signature we calculated does not match the signature you provided: '${name.slice(0, 64)}' in SignedHeaders is not a header name.`);
    const v = header(req.headers, name);
    if (v === undefined) throw invalidSignature(`The request signature we calculated does not match the signature you provided: signed header '${name}' is missing from the request.`);
    headers[name] = v;
  }
  // The signer trusts x-amz-content-sha256 as the payload hash, so check it is the body's.
  const bodyHash = createHash('sha256').update(req.body).digest('hex');
  const declaredHash = header(req.headers, 'x-amz-content-sha256');
  if (declaredHash !== undefined && declaredHash !== bodyHash) {
    throw invalidSignature('The provided x-amz-content-sha256 header does not match what was computed; the request body was altered or not signed.');
  }
  const query = parseQuery(req.query);
  let expected: string;
  if (req.path === '/') {
    // Every API of Berth is `POST /`: canonicalise and derive the key with the library's
    // own functions, without the full signer's request copies and async hops.
    const canonicalHeaders = getCanonicalHeaders({ headers } as never, undefined, new Set(signedHeaders));
    const names = Object.keys(canonicalHeaders).sort();
    const canonical = [
      req.method, '/', getCanonicalQuery({ query } as never),
      names.map((n) => `${n}:${canonicalHeaders[n]}`).join('\n') + '\n',
      names.join(';'), bodyHash,
    ].join('\n');
    const scopeText = createScope(scopeDate, region, service);
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scopeText}\n${createHash('sha256').update(canonical).digest('hex')}`;
    const key = await getSigningKey(Sha256 as never, { accessKeyId, secretAccessKey: secret }, scopeDate, region, service);
    expected = createHmac('sha256', key).update(stringToSign).digest('hex');
  } else {
    const signed = await signerFor(accessKeyId, secret, region, service).sign(
      { method: req.method, protocol: 'http:', hostname: headers.host!, path: req.path, query, headers, body: req.body },
      { signingDate: new Date(signedAt), signingRegion: region, signingService: service, signableHeaders: new Set(signedHeaders) },
    );
    expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? signed.headers.Authorization))?.[1] ?? '';
  }
  if (expected.length !== 64 || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
    throw invalidSignature('The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.');
  }
  return { accessKeyId, region, service, signedAt };
}
