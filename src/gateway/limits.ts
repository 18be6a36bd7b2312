// What the gateway lets a connection do before its agent has proven who it is (any task can
// reach the gateway address, so these bound what a hostile one can make the control plane
// hold), and after. Pure bookkeeping: the gateway asks, this answers.

export interface GatewayLimits {
  /** Unauthenticated connections at once from one source address. */
  perSource: number;
  /** Unauthenticated connections at once in all. */
  unauthenticated: number;
  /** Bytes (after TLS) a connection may send before its hello is accepted: the upgrade request and a hello. */
  preAuthBytes: number;
  /** From TCP accept to a hello received: TLS handshake, upgrade and hello must fit in it. */
  helloDeadlineMs: number;
  /** The largest message an authenticated agent may send (the agent splits log batches below it). */
  maxPayload: number;
}

/**
 * An agent's largest messages are log batches (the agent keeps them under AGENT_LOG_BATCH_BYTES,
 * with one event of at most 256 KiB, which JSON escaping can grow up to 6 times) and its
 * register message (a report per task).
 */
export const DEFAULT_LIMITS: GatewayLimits = {
  perSource: 4,
  unauthenticated: 128,
  preAuthBytes: 16 * 1024,
  helloDeadlineMs: 5_000,
  maxPayload: 2 * 1024 * 1024,
};

/** Counts unauthenticated connections per source address. */
export class PreAuthCounter {
  private readonly bySource = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: Pick<GatewayLimits, 'perSource' | 'unauthenticated'>) {}

  /** Takes a slot for a new connection from `source`; false when it must be refused. */
  admit(source: string): boolean {
    const n = this.bySource.get(source) ?? 0;
    if (n >= this.limits.perSource || this.total >= this.limits.unauthenticated) return false;
    this.bySource.set(source, n + 1);
    this.total++;
    return true;
  }

  /** Gives the slot back (the connection authenticated or closed). */
  release(source: string): void {
    const n = this.bySource.get(source) ?? 0;
    if (n <= 1) this.bySource.delete(source); else this.bySource.set(source, n - 1);
    this.total = Math.max(0, this.total - 1);
  }

  get unauthenticated(): number { return this.total; }
}

/** An IPv4 peer address as the instance records hold it (no IPv4-mapped IPv6 prefix). */
export function peerAddress(remote: string | undefined): string {
  return (remote ?? '').replace(/^::ffff:/, '');
}
