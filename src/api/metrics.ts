// Prometheus metrics for the API: request counts by outcome and latency per action.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  observe(service: string, action: string, code: string, seconds: number): void {
    this.requests.labels(service, action, code).inc();
    this.latency.labels(service, action).observe(seconds);
  }
}
