import { type Clock, systemClock } from '../util/clock';
import { GuardedStore } from './guarded-store';
import { InstrumentedStore } from './instrumented-store';
import { DEFAULT_UPLOADS_WHILE_READING, IoPool } from './io-pool';
import type { ObjectStore } from './object-store';
import { PooledStore } from './pooled-store';
import { DEFAULT_RETRY, RetryingStore } from './retrying-store';
import { StoreStats } from './store-stats';
import { TimeLimitedStore } from './time-limited-store';

export interface StackOptions {
  /** Requests in flight at most (the I/O pool). */
  readonly concurrency: number;
  /** One attempt's time limit, headers and body. */
  readonly requestTimeoutMs: number;
  /** How long transient failures are retried; also bounds the wait for a pool slot. */
  readonly retryDeadlineMs: number;
  readonly clock?: Clock;
  /** Flushes in flight at most while reads wait (IoPoolOptions.flushWhileForeground); 2 if unset. */
  readonly uploadsWhileReading?: number;
  /** The retry jitter's source (seeded in the simulation). */
  readonly random?: () => number;
}

export interface Stack {
  readonly store: ObjectStore;
  readonly pool: IoPool;
  readonly stats: StoreStats;
}

/**
 * The decorators every backend is used through (SlateDB style), from the caller down to the
 * wire: retries (a backoff holds no slot; the deadline bounds the wait for one), the bounded
 * pool with its lanes, the write-gate check right before each attempt, instrumentation, and
 * each attempt's time limit. The server, the CLI, the tests and the simulation build the same.
 */
export function storeStack(raw: ObjectStore, o: StackOptions): Stack {
  const clock = o.clock ?? systemClock;
  const stats = new StoreStats();
  const pool = new IoPool(
    {
      concurrency: o.concurrency,
      flushShare: 0.6,
      backgroundShare: 0.2,
      maxWaitMs: o.retryDeadlineMs,
      flushWhileForeground: o.uploadsWhileReading ?? DEFAULT_UPLOADS_WHILE_READING,
    },
    clock,
  );
  const wire = new TimeLimitedStore(raw, clock, o.requestTimeoutMs);
  const store = new RetryingStore(
    new PooledStore(new GuardedStore(new InstrumentedStore(wire, stats)), pool),
    { ...DEFAULT_RETRY, deadlineMs: o.retryDeadlineMs },
    { clock, random: o.random ?? Math.random, observer: stats },
  );
  return { store, pool, stats };
}
