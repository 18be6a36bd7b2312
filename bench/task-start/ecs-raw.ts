// A minimal ECS JSON 1.1 client for polling: one keep-alive socket pool, SigV4 with the same
// signer the SDKs use, no middleware stack. A DescribeTasks round trip costs the client a
// fraction of what @aws-sdk/client-ecs costs, so tight polling disturbs the machine less.
import { Agent, request } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';

export interface EcsCreds { endpoint: string; accessKeyId: string; secretAccessKey: string; region: string }

export class EcsError extends Error {
  constructor(readonly action: string, readonly status: number, readonly type: string, message: string) {
    super(`${action}: ${type}: ${message}`);
  }
}

const Sha256 = Hash.bind(null, 'sha256') as unknown as ConstructorParameters<typeof SignatureV4>[0]['sha256'];

export class RawEcs {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4, maxFreeSockets: 4 });
  private readonly signer: SignatureV4;
  private readonly url: URL;
  /** Requests sent so far (to report what polling cost). */
  calls = 0;

  constructor(creds: EcsCreds) {
    this.url = new URL(creds.endpoint);
    this.signer = new SignatureV4({
      credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
      region: creds.region || 'us-east-1', service: 'ecs', sha256: Sha256, applyChecksum: false,
    });
  }

  async call<T = any>(action: string, input: unknown): Promise<T> {
    const body = JSON.stringify(input);
    const signed = (await this.signer.sign({
      method: 'POST', protocol: 'http:', hostname: this.url.hostname, port: Number(this.url.port), path: '/', query: {},
      headers: {
        host: this.url.host,
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `AmazonEC2ContainerServiceV20141113.${action}`,
      },
      body,
    } as any, { signingDate: new Date() })) as unknown as { headers: Record<string, unknown> };
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = String(v);
    headers['content-length'] = String(Buffer.byteLength(body));
    this.calls++;
    return new Promise<T>((resolve, reject) => {
      const req = request({ host: this.url.hostname, port: this.url.port, method: 'POST', path: '/', headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: any;
          try { json = JSON.parse(text); } catch { json = undefined; }
          if (res.statusCode !== 200) {
            reject(new EcsError(action, res.statusCode ?? 0, String(json?.__type ?? 'HTTP error'), String(json?.message ?? text.slice(0, 300))));
          } else resolve(json as T);
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
