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


/**
 * Virtual time for tests, demos and the simulator: runs `factor` times faster than real time
 * (0 = stands still) from `start`, and can be moved forward by hand. Timers fire when their
 * time is reached either way.
 */
export class VirtualClock implements Clock {
  private readonly realStart = Date.now();
  private offset = 0;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void; timer?: NodeJS.Timeout }>();

  constructor(readonly factor: number, private readonly start: number = Date.now()) {
    if (!(factor >= 0) || !Number.isFinite(factor)) throw new Error('clock factor must be 0 or more');
  }

  now(): number {
    return this.start + (Date.now() - this.realStart) * this.factor + this.offset;
  }

  after(ms: number, fn: () => void): Timer {
    const id = this.seq++;
    const entry: { at: number; fn: () => void; timer?: NodeJS.Timeout } = { at: this.now() + Math.max(0, ms), fn };
    this.pending.set(id, entry);
    this.arm(id);
    return { cancel: () => { const e = this.pending.get(id); if (e?.timer) clearTimeout(e.timer); this.pending.delete(id); } };
  }

  private arm(id: number): void {
    const e = this.pending.get(id);
    if (!e) return;
    if (e.timer) clearTimeout(e.timer);
    delete e.timer;
    const left = e.at - this.now();
    if (left <= 0) { this.pending.delete(id); queueMicrotask(e.fn); return; }
    if (this.factor === 0) return;
    e.timer = setTimeout(() => this.arm(id), Math.min(2 ** 31 - 1, Math.max(1, left / this.factor)));
    e.timer.unref?.();
  }

  /** Moves time forward; timers that come due fire. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new Error('time only moves forward');
    this.offset += ms;
    for (const id of [...this.pending.keys()].sort((a, b) => this.pending.get(a)!.at - this.pending.get(b)!.at)) this.arm(id);
  }
}

/** Parses BERTH_CLOCK: `system`, `manual[:<ISO start>]` or `accelerated:<factor>[:<ISO start>]`. */
export function clockFromSpec(spec: string | undefined): Clock {
  if (!spec || spec === 'system') return systemClock;
  const [mode, ...rest] = spec.split(':');
  const parseStart = (text: string | undefined) => {
    if (!text) return Date.now();
    const t = Date.parse(text);
    if (Number.isNaN(t)) throw new Error(`BERTH_CLOCK start '${text}' is not an ISO-8601 time`);
    return t;
  };
  if (mode === 'manual') return new VirtualClock(0, parseStart(rest.join(':') || undefined));
  if (mode === 'accelerated') {
    const factor = Number(rest[0]);
    if (!(factor > 0)) throw new Error(`BERTH_CLOCK accelerated needs a positive factor, e.g. accelerated:3600; got '${rest[0]}'`);
    return new VirtualClock(factor, parseStart(rest.slice(1).join(':') || undefined));
  }
  throw new Error(`BERTH_CLOCK must be system, manual[:<ISO start>] or accelerated:<factor>[:<ISO start>]; got '${spec}'`);
}
