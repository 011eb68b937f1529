import type { StorageError } from './errors';
import type { StoreObserver, StoreOp } from './instrumented-store';
import type { RetryObserver } from './retrying-store';

/** Request counters of one backend, read by the metrics module (pull). */
export class StoreStats implements StoreObserver, RetryObserver {
  /** `${op} ${outcome}` -> count */
  readonly requests = new Map<string, number>();
  readonly retries = new Map<string, number>();
  bytesIn = 0;
  bytesOut = 0;
  /** Latency samples (seconds) per op since the last drain, bounded. */
  private latency = new Map<StoreOp, number[]>();

  request(op: StoreOp, outcome: string, seconds: number, bytes: number): void {
    const k = `${op} ${outcome}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
    if (op === 'get') this.bytesIn += bytes;
    if (op === 'put') this.bytesOut += bytes;
    const l = this.latency.get(op) ?? [];
    if (l.length < 10_000) l.push(seconds);
    this.latency.set(op, l);
  }

  retried(op: string, _error: StorageError): void {
    this.retries.set(op, (this.retries.get(op) ?? 0) + 1);
  }

  drainLatency(): Map<StoreOp, number[]> {
    const l = this.latency;
    this.latency = new Map();
    return l;
  }

  count(op: StoreOp, outcome = 'ok'): number {
    return this.requests.get(`${op} ${outcome}`) ?? 0;
  }
}
