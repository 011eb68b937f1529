import { HistogramMap } from '../util/histogram';
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
  /** Latency per op, seconds. */
  readonly latency = new HistogramMap<StoreOp>();

  request(op: StoreOp, outcome: string, seconds: number, bytes: number): void {
    const k = `${op} ${outcome}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
    if (op === 'get') this.bytesIn += bytes;
    if (op === 'put') this.bytesOut += bytes;
    this.latency.observe(op, seconds);
  }

  retried(op: string, _error: StorageError): void {
    this.retries.set(op, (this.retries.get(op) ?? 0) + 1);
  }

  count(op: StoreOp, outcome = 'ok'): number {
    return this.requests.get(`${op} ${outcome}`) ?? 0;
  }
}
