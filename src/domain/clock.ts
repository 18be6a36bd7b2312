// Time is injected: nothing in Berth reads Date.now() directly, so tests and the
// simulator can run the control plane on a manual or accelerated clock.

export interface Timer { cancel(): void }

export interface Clock {
  /** Milliseconds since the Unix epoch, on this clock. */
  now(): number;
  /** Calls `fn` once `ms` of this clock's time has passed. */
  after(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

/** A clock that only moves when told to: for tests. */
export class ManualClock implements Clock {
  private pending: { at: number; fn: () => void; seq: number }[] = [];
  private seq = 0;
  constructor(private current: number = Date.UTC(2026, 0, 1)) {}

  now(): number { return this.current; }

  after(ms: number, fn: () => void): Timer {
    const entry = { at: this.current + Math.max(0, ms), fn, seq: this.seq++ };
    this.pending.push(entry);
    return { cancel: () => { this.pending = this.pending.filter((e) => e !== entry); } };
  }

  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      this.pending.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.pending[0];
      if (!next || next.at > target) break;
      this.pending.shift();
      this.current = next.at;
      next.fn();
    }
    this.current = target;
  }

  set(ms: number): void { this.advance(Math.max(0, ms - this.current)); }
}

/** Real time running `factor` times faster from `start`: for demos and the simulator. */
export class AcceleratedClock implements Clock {
  private readonly realStart = Date.now();
  constructor(private readonly factor: number, private readonly start: number = Date.now()) {
    if (!(factor > 0)) throw new Error('clock factor must be positive');
  }
  now(): number { return this.start + (Date.now() - this.realStart) * this.factor; }
  after(ms: number, fn: () => void): Timer {
    const t = setTimeout(fn, Math.max(0, ms / this.factor));
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  }
}

export const epochSeconds = (ms: number): number => ms / 1000;
