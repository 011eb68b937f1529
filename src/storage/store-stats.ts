import { HistogramMap } from '../util/histogram';
import type { StorageError } from './errors';
import { STORE_OPS, type StoreObserver, type StoreOp } from './instrumented-store';
import { LunCosts } from './lun-costs';
import type { RetryObserver } from './retrying-store';

/** Request counters of one backend, read by the metrics module (pull). */
export class StoreStats implements StoreObserver, RetryObserver {
  /** `${op} ${outcome}` -> count */
  readonly requests = new Map<string, number>();
  /** Every operation from the start at 0 (a dashboard's rate() has a series before the first retry). */
  readonly retries = new Map<string, number>(STORE_OPS.map((op) => [op, 0]));
  bytesIn = 0;
  bytesOut = 0;
  /** Latency per op, seconds. */
  readonly latency = new HistogramMap<StoreOp>();

  /** LUN root (layout.root) -> its traffic; keys under no registered root count only above. */
  private readonly luns = new Map<string, LunCosts>();

  /** The traffic of the LUN whose keys are under `root/` (counted from now on). */
  costsOf(root: string): LunCosts {
    let c = this.luns.get(root);
    if (!c) {
      c = new LunCosts();
      this.luns.set(root, c);
    }
    return c;
  }

  request(op: StoreOp, outcome: string, seconds: number, bytes: number, key?: string): void {
    if (key !== undefined && this.luns.size > 0) this.lunOf(key)?.add(op, bytes);
    const k = `${op} ${outcome}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
    if (op === 'get') this.bytesIn += bytes;
    if (op === 'put') this.bytesOut += bytes;
    this.latency.observe(op, seconds);
  }

  /** The LUN a key belongs to: the registered root that is a whole-segment prefix of it. */
  private lunOf(key: string): LunCosts | undefined {
    for (let at = key.indexOf('/'); at > 0; at = key.indexOf('/', at + 1)) {
      const c = this.luns.get(key.slice(0, at));
      if (c) return c;
    }
    return undefined;
  }

  retried(op: string, _error: StorageError): void {
    this.retries.set(op, (this.retries.get(op) ?? 0) + 1);
  }

  count(op: StoreOp, outcome = 'ok'): number {
    return this.requests.get(`${op} ${outcome}`) ?? 0;
  }
}
