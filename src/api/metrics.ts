// Prometheus metrics for the API: request counts by outcome and latency per action.
import { timingSafeEqual, createHash } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ApiError } from './errors.js';
import type { RequestContext } from './context.js';

export class ApiMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'berth_api_requests_total',
    help: 'API requests by service, action and response code',
    labelNames: ['service', 'action', 'code'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'berth_api_request_duration_seconds',
    help: 'API request latency by service and action',
    labelNames: ['service', 'action'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'berth_' });
  }

  private readonly children = new Map<string, { count: { inc(): void }; time: { observe(v: number): void } }>();

  observe(service: string, action: string, code: string, seconds: number): void {
    const key = `${service}\0${action}\0${code}`;
    let c = this.children.get(key);
    if (!c) {
      c = { count: this.requests.labels(service, action, code), time: this.latency.labels(service, action) };
      this.children.set(key, c);
    }
    c.count.inc();
    c.time.observe(seconds);
  }
}

/** Per-task resource use that agents report, for /metrics. */
export class TaskMetrics {
  readonly cpu: Gauge<'cluster' | 'task' | 'family'>;
  readonly memory: Gauge<'cluster' | 'task' | 'family'>;

  constructor(registry: Registry) {
    this.cpu = new Gauge({ name: 'berth_task_cpu_seconds_total', help: 'CPU time used by a task\'s containers', labelNames: ['cluster', 'task', 'family'] as const, registers: [registry] });
    this.memory = new Gauge({ name: 'berth_task_memory_bytes', help: 'Memory used by a task\'s containers', labelNames: ['cluster', 'task', 'family'] as const, registers: [registry] });
  }

  set(cluster: string, task: string, family: string, cpuSeconds: number, memoryBytes: number): void {
    this.cpu.labels(cluster, task, family).set(cpuSeconds);
    this.memory.labels(cluster, task, family).set(memoryBytes);
  }

  remove(cluster: string, task: string, family: string): void {
    this.cpu.remove(cluster, task, family);
    this.memory.remove(cluster, task, family);
  }
}

export interface MetricsAccessOptions {
  /** BERTH_METRICS_TOKEN: a scrape credential sent as `Authorization: Bearer <token>`. */
  token: string | undefined;
  /** The accounts whose principals may read metrics: the administrator's and the operators'. */
  administrators: () => string[];
  /** IAM: berth:GetMetrics for the caller (an account's root is allowed). */
  authorize: (ctx: RequestContext) => void;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Who may read /metrics: the series name every account's clusters, tasks and families, so
 * only the administrator may (admin-only, not per-account filtering): the scrape token, or a
 * SigV4-signed GET by a principal of the administrator's or the operator account allowed
 * berth:GetMetrics. A customer account's root is refused like everyone else.
 */
export function metricsAccess(o: MetricsAccessOptions): (caller: { ctx: RequestContext } | { bearer: string }) => void {
  const token = o.token ? digest(o.token) : undefined;
  return (caller) => {
    if ('bearer' in caller) {
      if (!token) throw new ApiError('AccessDeniedException', 'No metrics scrape credential is configured (set BERTH_METRICS_TOKEN), so a bearer token opens nothing; sign the GET with SigV4 instead.', 403);
      if (!timingSafeEqual(digest(caller.bearer), token)) throw new ApiError('AccessDeniedException', 'The bearer token is not the metrics scrape credential (BERTH_METRICS_TOKEN).', 403);
      return;
    }
    const { ctx } = caller;
    if (!o.administrators().includes(ctx.principal.accountId)) {
      throw new ApiError('AccessDeniedException', `User: arn:${ctx.scope.partition}:${ctx.principal.principal} is not authorized to perform: berth:GetMetrics: /metrics names every account's resources, so only the Berth administrator's account and operators may read it.`, 403);
    }
    try {
      o.authorize(ctx);
    } catch (e) {
      // An HTTP GET, not an AWS JSON call: a refusal is a 403.
      if (e instanceof ApiError) throw new ApiError(e.code, e.message, 403);
      throw e;
    }
  };
}
