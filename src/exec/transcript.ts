// A session's transcript (what the command printed) in the log store, one event per line,
// under the log group the cluster's executeCommandConfiguration names. With a kmsKeyId,
// each event is sealed (AES-256-GCM) under a data key of that KMS key before it is stored,
// so the database holds no transcript in clear; GetLogEvents/FilterLogEvents open it for
// callers of the same account while the key is enabled (see kms/kms.ts and Logs.decode).
import { StringDecoder } from 'node:string_decoder';
import type { Clock } from '../domain/clock.js';
import type { Logs } from '../logs/index.js';

/** Seals values at rest under a KMS key (kms/kms.ts); `check` throws when the key cannot be used. */
export interface Sealer {
  seal(scope: string, keyRef: string, plaintext: string): string;
  check(scope: string, keyRef: string): void;
}

const FLUSH_MS = 200;
const PARTIAL_LINE_MS = 1_000;
const MAX_BATCH = 1_000;

export interface TranscriptOptions {
  logs: Logs;
  keys: Sealer;
  scope: string;
  group: string;
  stream: string;
  kmsKeyId?: string;
  clock: Clock;
  log: (line: string) => void;
}

export class Transcript {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private partialSince = 0;
  private batch: { timestamp: number; message: string }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failed = false;

  constructor(private readonly o: TranscriptOptions) {
    // A new group for an encrypted transcript records the key id, as CloudWatch shows it.
    const now = o.clock.now();
    if (o.kmsKeyId && !o.logs.store.group(o.scope, o.group)) o.logs.store.createGroup(o.scope, o.group, now, { kmsKeyId: o.kmsKeyId });
    o.logs.putEvents(o.scope, o.group, o.stream, []);
  }

  write(data: Buffer): void {
    if (this.failed) return;
    const text = this.partial + this.decoder.write(data);
    const lines = text.split('\n');
    const rest = lines.pop()!;
    const now = this.o.clock.now();
    for (const line of lines) this.add(line, now);
    // When the unfinished line began: now, unless it is the same one still growing.
    if (lines.length > 0 || this.partial === '') this.partialSince = now;
    this.partial = rest;
    if (this.partial && now - this.partialSince >= PARTIAL_LINE_MS) { this.add(this.partial, now); this.partial = ''; }
    this.schedule();
  }

  /** Writes what is left; the transcript is complete. */
  close(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (rest) this.add(rest, this.o.clock.now());
    this.flush();
  }

  private add(line: string, now: number): void {
    const message = line.replace(/\r+$/, '').replace(/\r(?!\n)/g, '');
    if (message === '') return;
    this.batch.push({ timestamp: now, message: this.o.kmsKeyId ? this.o.keys.seal(this.o.scope, this.o.kmsKeyId, message) : message });
    if (this.batch.length >= MAX_BATCH) this.flush();
  }

  private schedule(): void {
    if (this.timer || (this.batch.length === 0 && !this.partial)) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.partial && this.o.clock.now() - this.partialSince >= PARTIAL_LINE_MS) { this.add(this.partial, this.o.clock.now()); this.partial = ''; }
      this.flush();
      this.schedule();
    }, this.partial && this.batch.length === 0 ? PARTIAL_LINE_MS : FLUSH_MS);
    this.timer.unref?.();
  }

  private flush(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.batch.length === 0 || this.failed) return;
    const events = this.batch;
    this.batch = [];
    try {
      this.o.logs.putEvents(this.o.scope, this.o.group, this.o.stream, events);
    } catch (e) {
      this.failed = true;
      this.o.log(`exec: transcript ${this.o.group}/${this.o.stream}: ${(e as Error).message}`);
    }
  }
}
