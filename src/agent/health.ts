// Container health checks as ECS runs them: the command runs inside the container every
// `interval` seconds with a `timeout`; `retries` consecutive failures make it UNHEALTHY,
// a success HEALTHY; failures within `startPeriod` do not count.

export interface HealthCheckSpec { command: string[]; interval: number; timeout: number; retries: number; startPeriod: number }
export type Health = 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';

/** The argv to exec for a task definition's healthCheck.command; undefined for NONE. */
export function healthCommand(command: string[]): string[] | undefined {
  const [kind, ...rest] = command;
  if (kind === 'CMD-SHELL') return ['/bin/sh', '-c', rest.join(' ')];
  if (kind === 'CMD') return rest;
  return undefined;
}

export interface HealthState { status: Health; failures: number }

/** The next health state after one check result (pure). */
export function nextHealth(state: HealthState, passed: boolean, sinceStartMs: number, spec: HealthCheckSpec): HealthState {
  if (passed) return { status: 'HEALTHY', failures: 0 };
  if (sinceStartMs < spec.startPeriod * 1000 && state.status !== 'HEALTHY') return state;
  const failures = state.failures + 1;
  return { status: failures >= spec.retries ? 'UNHEALTHY' : state.status, failures };
}

export type Exec = (argv: string[], timeoutMs: number) => Promise<{ exitCode: number }>;

/** Runs one container's checks until stopped; reports each change of status. */
export class HealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private state: HealthState = { status: 'UNKNOWN', failures: 0 };

  constructor(
    private readonly spec: HealthCheckSpec,
    private readonly exec: Exec,
    private readonly startedAt: number,
    private readonly onChange: (h: Health) => void,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    const argv = healthCommand(this.spec.command);
    if (!argv) return;
    const tick = async () => {
      if (this.stopped) return;
      const r = await this.exec(argv, this.spec.timeout * 1000).catch(() => ({ exitCode: -1 }));
      if (this.stopped) return;
      const next = nextHealth(this.state, r.exitCode === 0, this.now() - this.startedAt, this.spec);
      const changed = next.status !== this.state.status;
      this.state = next;
      if (changed) this.onChange(next.status);
      this.timer = setTimeout(() => void tick(), this.spec.interval * 1000);
    };
    // The first check runs right away so a HEALTHY dependency is not held back a whole interval.
    this.timer = setTimeout(() => void tick(), 0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
