export type LockMode = 'shared' | 'exclusive';

interface Holder {
  readonly start: number;
  readonly end: number;
  readonly mode: LockMode;
  readonly released: Promise<void>;
}

/**
 * Byte-range locks with FIFO fairness: a request waits for every earlier request that overlaps
 * it unless both are shared. Overlapping commands therefore run in arrival order and
 * non-overlapping ones in parallel; a request only ever waits for older ones, so there is no
 * deadlock.
 */
export class RangeLock {
  private readonly holders = new Set<Holder>();

  async acquire(offset: number, length: number, mode: LockMode): Promise<() => void> {
    const start = offset;
    const end = offset + Math.max(length, 1);
    const blockers: Promise<void>[] = [];
    for (const h of this.holders) {
      if (h.start < end && start < h.end && (mode === 'exclusive' || h.mode === 'exclusive')) blockers.push(h.released);
    }
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const holder: Holder = { start, end, mode, released };
    this.holders.add(holder);
    if (blockers.length > 0) await Promise.all(blockers);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.holders.delete(holder);
      release();
    };
  }

  /** Runs `fn` under the lock. */
  async with<T>(offset: number, length: number, mode: LockMode, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(offset, length, mode);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  get size(): number {
    return this.holders.size;
  }
}
