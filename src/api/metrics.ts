// Prometheus metrics for the API: request counts by outcome and latency per action.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
