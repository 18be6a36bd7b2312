// The optional TLS listener (BERTH_TLS_PORT): the same API over HTTPS, with the user's
// certificate (BERTH_TLS_CERT/BERTH_TLS_KEY, PEM files) or a self-signed one generated for
// local use with Debian's `openssl` (Node cannot make X.509 certificates by itself).
//
// FIPS mode (BERTH_FIPS=1) restricts the listener to FIPS-approved protocol versions and
// cipher suites: TLS 1.2 with ECDHE and AES-GCM, TLS 1.3 with AES-GCM (no ChaCha20, no
// CBC, no RSA key exchange), NIST curves and SHA-2 signatures. Whether the cryptography
// underneath is a FIPS-validated module is another matter, and Berth says which it is:
// it reports whether Node's OpenSSL FIPS provider is active (crypto.getFips(), at start-up
// and in /healthz). On a host without the OpenSSL FIPS provider that is "not active", and
// Berth never claims otherwise.
import { spawnSync } from 'node:child_process';
import { createHash, getFips } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import { join } from 'node:path';

/** TLS 1.2 suites FIPS 140 allows that Berth offers (ECDHE + AES-GCM). */
export const FIPS_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384',
];
/** TLS 1.3 suites FIPS 140 allows (AES-GCM; not TLS_CHACHA20_POLY1305_SHA256). */
export const FIPS_TLS13_CIPHERS = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384'];
const FIPS_CURVES = 'P-256:P-384:P-521';
const FIPS_SIGALGS = 'ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:RSA+SHA256:RSA+SHA384:RSA+SHA512';

export interface TlsConfig {
  port: number;
  fips: boolean;
  options: ServerOptions;
  certificate: 'user' | 'self-signed';
  certFile: string;
}

export interface FipsStatus {
  /** BERTH_FIPS=1: the TLS listener accepts only FIPS-approved versions and suites. */
  mode: boolean;
  /** crypto.getFips() after asking for it: whether Node's OpenSSL FIPS provider is active. */
  providerActive: boolean;
  detail: string;
}

/**
 * Whether Node's OpenSSL FIPS provider is active, as it is: Berth does not call
 * crypto.setFips(true) itself (on a host without the provider OpenSSL accepts it and then
 * refuses every cipher). Start Node with `--enable-fips` (e.g. NODE_OPTIONS) and an OpenSSL
 * configuration that loads the FIPS provider to get it; Berth then reports it active once
 * an approved algorithm actually runs.
 */
export function fipsStatus(wanted: boolean): FipsStatus {
  let active = getFips() === 1;
  let detail = '';
  if (active) {
    try { createHash('sha256').update('probe').digest(); } catch (e) { active = false; detail = `; crypto.getFips() = 1 but SHA-256 fails: ${(e as Error).message}`; }
  }
  return {
    mode: wanted,
    providerActive: active,
    detail: active
      ? `Node's OpenSSL ${process.versions.openssl} FIPS provider is active (crypto.getFips() = 1)`
      : `Node's OpenSSL ${process.versions.openssl} FIPS provider is NOT active on this host (crypto.getFips() = ${getFips()}${detail})` +
        (wanted ? ': protocol versions and cipher suites are restricted to FIPS-approved ones, but the cryptographic module is not a FIPS-validated one here' : ''),
  };
}

function selfSigned(dir: string, hosts: string[]): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const san = [...new Set(['localhost', '127.0.0.1', ...hosts])].map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  const r = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha256', '-nodes', '-days', '825',
    '-subj', '/CN=Berth local endpoint', '-addext', `subjectAltName=${san}`, '-keyout', key, '-out', cert,
  ], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`BERTH_TLS_PORT is set without BERTH_TLS_CERT/BERTH_TLS_KEY, and a self-signed certificate could not be made with openssl (${r.error?.message ?? r.stderr.trim()}); install openssl or give a certificate`);
  }
  return { cert, key };
}

/** The TLS listener's configuration from the environment, or undefined when BERTH_TLS_PORT is unset. */
export function tlsConfigFromEnv(env: NodeJS.ProcessEnv, dataDir: string, host: string): TlsConfig | undefined {
  const fips = env.BERTH_FIPS === '1' || env.BERTH_FIPS === 'true';
  if (env.BERTH_TLS_PORT === undefined || env.BERTH_TLS_PORT === '') {
    if (fips) throw new Error('BERTH_FIPS=1 needs the TLS listener: set BERTH_TLS_PORT (FIPS endpoints are HTTPS endpoints)');
    return undefined;
  }
  const port = Number(env.BERTH_TLS_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`BERTH_TLS_PORT must be a port number (0-65535); got '${env.BERTH_TLS_PORT}'`);
  if ((env.BERTH_TLS_CERT === undefined) !== (env.BERTH_TLS_KEY === undefined)) throw new Error('BERTH_TLS_CERT and BERTH_TLS_KEY go together (PEM certificate chain and private key)');
  const user = env.BERTH_TLS_CERT !== undefined;
  const files = user ? { cert: env.BERTH_TLS_CERT!, key: env.BERTH_TLS_KEY! } : selfSigned(join(dataDir, 'tls'), [host]);
  const options: ServerOptions = { cert: readFileSync(files.cert), key: readFileSync(files.key), minVersion: 'TLSv1.2' };
  if (fips) {
    Object.assign(options, {
      minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3',
      ciphers: [...FIPS_TLS13_CIPHERS, ...FIPS_TLS12_CIPHERS].join(':'),
      ecdhCurve: FIPS_CURVES, sigalgs: FIPS_SIGALGS, honorCipherOrder: true,
    } satisfies ServerOptions);
  }
  return { port, fips, options, certificate: user ? 'user' : 'self-signed', certFile: files.cert };
}
