import type { Lane } from './object-store';

export interface IoPoolOptions {
  /** Global limit on requests in flight. */
  readonly concurrency: number;
  /** Share of the slots flushes may hold, so reads always find a free one. */
  readonly flushShare: number;
  /** Share of the slots background work (read-ahead, listing, defrag) may hold. */
  readonly backgroundShare: number;
}

export const DEFAULT_IO_POOL: IoPoolOptions = { concurrency: 64, flushShare: 0.6, backgroundShare: 0.2 };

interface Waiter {
  readonly lane: Lane;
  readonly run: () => void;
}

export interface IoPoolStats {
  readonly inFlight: Record<Lane, number>;
  readonly queued: Record<Lane, number>;
}

/**
 * The bounded pool every backend request goes through (the original design's "thread pool").
 * One global limit; each lane has a cap below it so the foreground lane can never be starved,
 * and when a slot frees, a foreground waiter goes first, then flushes, then background work.
 */
export class IoPool {
  private readonly caps: Record<Lane, number>;
  private readonly inFlight: Record<Lane, number> = { foreground: 0, flush: 0, background: 0 };
  private readonly queues: Record<Lane, Waiter[]> = { foreground: [], flush: [], background: [] };
  private total = 0;

  constructor(readonly options: IoPoolOptions = DEFAULT_IO_POOL) {
    const n = Math.max(3, options.concurrency);
    // Flush and background together never hold every slot: at least one stays for reads.
    const flush = Math.max(1, Math.floor(n * options.flushShare));
    const background = Math.max(1, Math.min(Math.floor(n * options.backgroundShare), n - flush - 1));
    this.caps = { foreground: n, flush: Math.min(flush, n - background - 1), background };
  }

  async run<T>(lane: Lane, fn: () => Promise<T>): Promise<T> {
    if (!this.canStart(lane)) {
      await new Promise<void>((resolve) => this.queues[lane].push({ lane, run: resolve }));
    } else {
      this.start(lane);
    }
    try {
      return await fn();
    } finally {
      this.total--;
      this.inFlight[lane]--;
      this.dispatch();
    }
  }

  stats(): IoPoolStats {
    return {
      inFlight: { ...this.inFlight },
      queued: { foreground: this.queues.foreground.length, flush: this.queues.flush.length, background: this.queues.background.length },
    };
  }

  private canStart(lane: Lane): boolean {
    return this.total < this.caps.foreground && this.inFlight[lane] < this.caps[lane];
  }

  private start(lane: Lane): void {
    this.total++;
    this.inFlight[lane]++;
  }

  private dispatch(): void {
    for (const lane of ['foreground', 'flush', 'background'] as const) {
      const q = this.queues[lane];
      while (q.length > 0 && this.canStart(lane)) {
        const w = q.shift() as Waiter;
        this.start(lane);
        w.run();
      }
    }
  }
}
