/**
 * Open read handles of the local store's chunk files, reused across ranged reads (a random
 * 4 KiB read would otherwise pay open, fstat, two trailer reads and close each time). A
 * handle refers to an inode: every put or delete of the key drops it first, and it is closed
 * once its last reader is done.
 */
interface Entry<T> {
  readonly ready: Promise<T | null>;
  refs: number;
  dropped: boolean;
}

export class HandleCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly max: number,
    private readonly open: (key: string) => Promise<T | null>,
    private readonly close: (handle: T) => Promise<void>,
  ) {}

  /** The open handle of `key` (null if the object does not exist); call `release` when done. */
  async acquire(key: string): Promise<{ handle: T | null; release: () => void }> {
    let e = this.entries.get(key);
    if (e) {
      // Map order is the LRU order.
      this.entries.delete(key);
      this.entries.set(key, e);
    } else {
      e = { ready: this.open(key), refs: 0, dropped: false };
      this.entries.set(key, e);
      this.trim();
    }
    const entry = e;
    entry.refs++;
    const release = (): void => this.release(entry);
    let handle: T | null;
    try {
      handle = await entry.ready;
    } catch (err) {
      release();
      this.drop(key, entry);
      throw err;
    }
    if (!handle) {
      // Absence is not cached: the next put creates the object.
      release();
      this.drop(key, entry);
    }
    return { handle, release };
  }

  /** The object changed or went away: no new reader gets the old handle. */
  invalidate(key: string): void {
    const e = this.entries.get(key);
    if (e) this.drop(key, e);
  }

  async closeAll(): Promise<void> {
    for (const [key, e] of [...this.entries]) this.drop(key, e);
  }

  private drop(key: string, e: Entry<T>): void {
    if (this.entries.get(key) === e) this.entries.delete(key);
    if (e.dropped) return;
    e.dropped = true;
    if (e.refs === 0) this.finish(e);
  }

  private release(e: Entry<T>): void {
    e.refs--;
    if (e.dropped && e.refs === 0) this.finish(e);
  }

  private finish(e: Entry<T>): void {
    e.ready.then((h) => (h ? this.close(h) : undefined)).catch(() => undefined);
  }

  private trim(): void {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.max) return;
      this.drop(key, e);
    }
  }
}
