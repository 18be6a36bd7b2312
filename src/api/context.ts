import type { Scope } from '../domain/arn.js';
import type { Clock } from '../domain/clock.js';
import type { Principal } from '../identity/credentials.js';

/** What every action handler knows about the request it serves. */
export interface RequestContext {
  requestId: string;
  scope: Scope;
  principal: Principal;
  clock: Clock;
  sourceIp: string;
  /** The request's Host header (where the client reached Berth), when it sent one. */
  host?: string;
  /** Set when the request came over TLS (aws:SecureTransport). */
  secureTransport?: boolean;
  service: string;
  action: string;
}

export type Handler<I = any, O = unknown> = (ctx: RequestContext, input: I) => O | Promise<O>;
