// TCP forwarders on the bridge gateway to services on the host's loopback (a registry on
// 127.0.0.1:5000 becomes <gateway>:5000 for instances and awsvpc tasks), like ECR being
// reachable over the VPC. They run in the Berth process, in the host network namespace:
// nothing listens inside an instance.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface LoopbackTarget { host: string; port: number }

/** Parses "127.0.0.1:5000", "localhost:5000", "[::1]:5000"; only loopback addresses are accepted. */
export function parseLoopback(hostPort: string): LoopbackTarget {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(hostPort.trim());
  const host = m ? (m[1] ?? m[2]!) : '';
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new Error(`registry address must be HOST:PORT, got '${hostPort}'`);
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!loopback) throw new Error(`only a loopback registry needs a forward (127.0.0.0/8, ::1, localhost), got '${hostPort}'`);
  return { host: host === 'localhost' ? '127.0.0.1' : host, port };
}

export class Forwarders {
  private readonly servers = new Map<string, { server: Server; address: string }>();
  private readonly sockets = new Set<Socket>();

  /** Listens on listenHost:target.port and pipes every connection to the target. */
  async ensure(listenHost: string, target: LoopbackTarget): Promise<string> {
    const key = `${listenHost}|${target.host}|${target.port}`;
    const existing = this.servers.get(key);
    if (existing) return existing.address;
    const address = `${listenHost}:${target.port}`;
    const server = createServer((inbound) => {
      const outbound = connect({ host: target.host, port: target.port });
      this.track(inbound); this.track(outbound);
      inbound.pipe(outbound).pipe(inbound);
      const close = () => { inbound.destroy(); outbound.destroy(); };
      inbound.on('error', close); outbound.on('error', close);
      inbound.on('close', close); outbound.on('close', close);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: listenHost, port: target.port, exclusive: true }, () => { server.off('error', reject); resolve(); });
      });
    } catch (e) {
      // A service listening on 0.0.0.0:<port> already answers on the gateway; nothing to forward.
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' && (await reachable(listenHost, target.port))) return address;
      throw new Error(`cannot forward ${address} to ${target.host}:${target.port}: ${(e as Error).message}`);
    }
    this.servers.set(key, { server, address });
    return address;
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  async close(): Promise<void> {
    const all = [...this.servers.values()];
    this.servers.clear();
    for (const s of this.sockets) s.destroy();
    await Promise.all(all.map(({ server }) => new Promise<void>((r) => server.close(() => r()))));
  }
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
