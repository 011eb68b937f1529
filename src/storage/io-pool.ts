import { abortReason, type Clock, systemClock, type Timer } from '../util/clock';
import { StorageError } from './errors';
import type { Lane } from './object-store';

export interface IoPoolOptions {
  /** Global limit on requests in flight. */
  readonly concurrency: number;
  /** Share of the slots flushes may hold, so reads always find a free one. */
  readonly flushShare: number;
  /** Share of the slots background work (read-ahead, listing, defrag) may hold. */
  readonly backgroundShare: number;
  /** How long a request without a deadline of its own may wait for a slot. */
  readonly maxWaitMs: number;
  /**
   * Flushes in flight at most while foreground requests (an initiator's command waits on them)
   * run or ran in the last FOREGROUND_HOLD_MS: reads first. Undefined: no such limit.
   */
  readonly flushWhileForeground?: number;
}

/** Uploads in flight at most while reads wait (`s3.uploadsWhileReading`): see IoPool.cap. */
export const DEFAULT_UPLOADS_WHILE_READING = 2;

export const DEFAULT_IO_POOL: IoPoolOptions = {
  concurrency: 64,
  flushShare: 0.6,
  backgroundShare: 0.2,
  maxWaitMs: 15_000,
  flushWhileForeground: DEFAULT_UPLOADS_WHILE_READING,
};

/**
 * How long after the last foreground request the flush lane stays at its reads-first limit:
 * a reader at queue depth 1 leaves gaps between its commands, and uploads started in each gap
 * would be what its next read waits behind (at the S3 server, or on the link).
 */
export const FOREGROUND_HOLD_MS = 250;

/**
 * The longest a flush waits behind reads: then it starts anyway (within the lane's cap). Reads
 * first, but a write-back never stalls, and no queued upload runs into its wait deadline
 * (STORE_ERR_POOL_TIMEOUT) because reads go on.
 */
export const FLUSH_MAX_HOLD_MS = 2_000;

type QueuedLane = Exclude<Lane, 'control'>;

interface Waiter {
  readonly run: () => void;
  settled: boolean;
  /** Clock time it was queued. */
  readonly since: number;
}

export interface IoPoolStats {
  readonly inFlight: Record<Lane, number>;
  readonly queued: Record<Lane, number>;
}

/** When a queued request gives up, and what may end its wait early. */
export interface SlotWait {
  /** Clock time after which the wait fails with STORE_ERR_POOL_TIMEOUT. */
  readonly deadline?: number;
  readonly signal?: AbortSignal;
}

/**
 * The bounded pool every backend request goes through (the original design's "thread pool").
 * One global limit; each lane has a cap below it so the foreground lane can never be starved,
 * and when a slot frees, a foreground waiter goes first, then flushes, then background work.
 * A wait for a slot is bounded (the operation's retry deadline) and ends when its signal aborts.
 */
export class IoPool {
  private readonly caps: Record<QueuedLane, number>;
  private readonly inFlight: Record<Lane, number> = { foreground: 0, flush: 0, background: 0, control: 0 };
  private readonly queues: Record<QueuedLane, Waiter[]> = { foreground: [], flush: [], background: [] };
  private total = 0;
  /** Clock time the last foreground request ended. */
  private foregroundEnded = Number.NEGATIVE_INFINITY;
  /** Dispatches held-back flushes when the foreground hold ends or the oldest has waited its most. */
  private wakeTimer: Timer | undefined;
  private wakeAt = Number.POSITIVE_INFINITY;

  constructor(
    readonly options: IoPoolOptions = DEFAULT_IO_POOL,
    private readonly clock: Clock = systemClock,
  ) {
    const n = Math.max(3, options.concurrency);
    // Flush and background together never hold every slot: at least one stays for reads.
    const flush = Math.max(1, Math.floor(n * options.flushShare));
    const background = Math.max(1, Math.min(Math.floor(n * options.backgroundShare), n - flush - 1));
    this.caps = { foreground: n, flush: Math.min(flush, n - background - 1), background };
  }

  async run<T>(lane: Lane, fn: () => Promise<T>, wait: SlotWait = {}): Promise<T> {
    if (lane === 'control') return this.unqueued(fn);
    if (this.canStart(lane)) this.start(lane);
    else await this.queue(lane, wait);
    try {
      return await fn();
    } finally {
      this.total--;
      this.inFlight[lane]--;
      if (lane === 'foreground') this.foregroundEnded = this.clock.now();
      this.dispatch();
    }
  }

  stats(): IoPoolStats {
    return {
      inFlight: { ...this.inFlight },
      queued: { foreground: this.queues.foreground.length, flush: this.queues.flush.length, background: this.queues.background.length, control: 0 },
    };
  }

  private async unqueued<T>(fn: () => Promise<T>): Promise<T> {
    this.inFlight.control++;
    try {
      return await fn();
    } finally {
      this.inFlight.control--;
    }
  }

  private queue(lane: QueuedLane, wait: SlotWait): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: Timer | undefined;
      const { signal } = wait;
      const leave = (e: Error): void => {
        if (w.settled) return;
        w.settled = true;
        const q = this.queues[lane];
        q.splice(q.indexOf(w), 1);
        timer?.cancel();
        signal?.removeEventListener('abort', onAbort);
        reject(e);
      };
      const onAbort = (): void => leave(abortReason(signal as AbortSignal));
      const w: Waiter = {
        since: this.clock.now(),
        settled: false,
        run: () => {
          w.settled = true;
          timer?.cancel();
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      this.queues[lane].push(w);
      this.armWake();
      const limit = (wait.deadline ?? this.clock.now() + this.options.maxWaitMs) - this.clock.now();
      timer = this.clock.after(limit, () =>
        leave(new StorageError('unavailable', `no ${lane} I/O slot freed up within ${Math.round(limit)} ms`, { code: 'STORE_ERR_POOL_TIMEOUT' })),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private canStart(lane: QueuedLane): boolean {
    return this.total < this.caps.foreground && this.inFlight[lane] < this.cap(lane);
  }

  /**
   * A lane's limit now. Uploads sharing the S3 server (or the link) with reads make each read
   * wait behind them: measured against RGW at +20 ms (bench/qos.ts), 16 uploads in flight put
   * a cold 4 KiB read's p99 at 6.8x its idle figure, 4 at 2.5x, 2 at 1.3x (the drain then takes
   * twice as long). So while anyone waits on a foreground request, and for FOREGROUND_HOLD_MS
   * after, flushes keep to a few slots.
   */
  private cap(lane: QueuedLane): number {
    const limit = this.options.flushWhileForeground;
    if (lane !== 'flush' || limit === undefined) return this.caps[lane];
    const reading = this.foregroundBusy() || this.clock.now() - this.foregroundEnded < FOREGROUND_HOLD_MS;
    return reading ? Math.min(limit, this.caps.flush) : this.caps.flush;
  }

  /** A foreground request runs or waits for a slot. */
  private foregroundBusy(): boolean {
    return this.inFlight.foreground > 0 || this.queues.foreground.length > 0;
  }

  private start(lane: QueuedLane): void {
    this.total++;
    this.inFlight[lane]++;
  }

  private dispatch(): void {
    for (const lane of ['foreground', 'flush', 'background'] as const) {
      const q = this.queues[lane];
      while (q.length > 0 && (this.canStart(lane) || (lane === 'flush' && this.heldTooLong(q[0])))) {
        const w = q.shift() as Waiter;
        this.start(lane);
        w.run();
      }
    }
    this.armWake();
  }

  /** A flush that only the reads-first limit holds back, for FLUSH_MAX_HOLD_MS already. */
  private heldTooLong(w: Waiter): boolean {
    return this.heldByReads() && this.clock.now() - w.since >= FLUSH_MAX_HOLD_MS;
  }

  /** Flushes wait although their lane and the pool have room: the reads-first limit holds them. */
  private heldByReads(): boolean {
    return this.queues.flush.length > 0 && this.total < this.caps.foreground && this.inFlight.flush < this.caps.flush;
  }

  /** Held-back flushes start when the reads' hold ends or the oldest has waited its most, not whenever another request ends. */
  private armWake(): void {
    const head = this.queues.flush[0];
    if (!head || !this.heldByReads()) return;
    let at = head.since + FLUSH_MAX_HOLD_MS;
    if (!this.foregroundBusy()) at = Math.min(at, this.foregroundEnded + FOREGROUND_HOLD_MS);
    if (this.wakeTimer && this.wakeAt <= at) return;
    this.wakeTimer?.cancel();
    this.wakeAt = at;
    this.wakeTimer = this.clock.after(at - this.clock.now(), () => {
      this.wakeTimer = undefined;
      this.wakeAt = Number.POSITIVE_INFINITY;
      this.dispatch();
    });
  }
}
