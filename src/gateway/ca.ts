// The agent channel's own PKI: a CA made once in the data dir, and the gateway's certificate
// (issued by that CA for the gateway address as an IP SAN). Agents receive the CA certificate
// at launch and trust nothing else, so a man in the middle on the bridge sees only TLS, and
// no other certificate, public or not, can stand in for the gateway. Debian's `openssl` makes
// the certificates (Node cannot make X.509 certificates by itself), as for the API's
// self-signed listener (src/api/tls.ts).
import { spawnSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GatewayCredentials {
  /** PEM of the CA certificate: public, given to every agent to pin. */
  ca: string;
  cert: string;
  key: string;
}

function openssl(args: string[], what: string): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`could not make the agent gateway's ${what} with openssl (${r.error?.message ?? r.stderr.trim()})`);
}

/** Whether a certificate names exactly this IP address (its SAN) and is valid a while longer. */
function certFits(certPem: string, caPem: string, host: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    const weekFromNow = Date.now() + 7 * 24 * 3600 * 1000;
    return cert.checkIssued(ca) && cert.verify(ca.publicKey) && cert.checkIP(host) !== undefined && Date.parse(cert.validTo) > weekFromNow;
  } catch { return false; }
}

/**
 * The CA (`<dir>/ca.pem`, key `ca.key`) is made once and kept: instances running across a
 * restart pinned it. The gateway's certificate is issued again when the gateway address
 * changes or it nears its end.
 */
export function gatewayCredentials(dir: string, host: string): GatewayCredentials {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCert = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const cert = join(dir, 'gateway.pem');
  const key = join(dir, 'gateway.key');
  if (!existsSync(caCert) || !existsSync(caKey)) {
    openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha256', '-nodes', '-days', '3650',
      '-subj', '/CN=Berth agent gateway CA', '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', caKey, '-out', caCert,
    ], 'CA');
  }
  const ca = readFileSync(caCert, 'utf8');
  if (!existsSync(cert) || !existsSync(key) || !certFits(readFileSync(cert, 'utf8'), ca, host)) {
    const csr = join(dir, 'gateway.csr');
    const ext = join(dir, 'gateway.ext');
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=Berth agent gateway', '-keyout', key, '-out', csr], 'key');
    writeFileSync(ext, `subjectAltName=IP:${host}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
    openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', `0x${randomBytes(16).toString('hex')}`,
      '-days', '825', '-sha256', '-extfile', ext, '-out', cert], 'certificate');
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
  }
  return { ca, cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}
