export type LockMode = 'shared' | 'exclusive';

/** One request for a range: it holds the range once every earlier conflicting request left. */
interface Holder {
  readonly start: number;
  readonly end: number;
  readonly mode: LockMode;
  /** Earlier conflicting requests still holding or waiting. */
  blockers: number;
  /** Later requests that wait for this one to leave (made only when one does). */
  waiters: Holder[] | undefined;
  /** Wakes this request once `blockers` reaches 0 (set only when it had to wait). */
  wake: (() => void) | undefined;
}

/**
 * Byte-range locks with FIFO fairness: a request waits for every earlier request that overlaps
 * it unless both are shared. Overlapping commands therefore run in arrival order and
 * non-overlapping ones in parallel; a request only ever waits for older ones, so there is no
 * deadlock. An uncontended request (every command of a queue that touches distinct blocks)
 * takes the lock without a promise of its own: this runs for every read and write.
 */
export class RangeLock {
  private readonly holders = new Set<Holder>();

  /** Runs `fn` under the lock; the lock is released when `fn` settles. */
  with<T>(offset: number, length: number, mode: LockMode, fn: () => Promise<T>): Promise<T> {
    const h = this.enter(offset, offset + Math.max(length, 1), mode);
    if (h.blockers === 0) return this.held(h, fn);
    return new Promise<void>((resolve) => {
      h.wake = resolve;
    }).then(() => this.held(h, fn));
  }

  get size(): number {
    return this.holders.size;
  }

  private enter(start: number, end: number, mode: LockMode): Holder {
    const h: Holder = { start, end, mode, blockers: 0, waiters: undefined, wake: undefined };
    for (const o of this.holders) {
      if (o.start < end && start < o.end && (mode === 'exclusive' || o.mode === 'exclusive')) {
        h.blockers++;
        if (o.waiters) o.waiters.push(h);
        else o.waiters = [h];
      }
    }
    this.holders.add(h);
    return h;
  }

  private async held<T>(h: Holder, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } finally {
      this.leave(h);
    }
  }

  private leave(h: Holder): void {
    this.holders.delete(h);
    for (const w of h.waiters ?? []) {
      w.blockers--;
      if (w.blockers === 0) w.wake?.();
    }
  }
}
