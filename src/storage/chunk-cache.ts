import { StorageError } from './errors';

/** Granularity of the valid-sector map: the smallest logical block. */
export const SECTOR = 512;

/**
 * One cached chunk. `valid` says which 512-byte sectors of `buf` hold current data; a write
 * fills sectors without reading the chunk first, and the stored base is fetched only when a
 * flush or a read needs sectors nobody wrote. `gen` counts modifications and `flushedGen` is
 * the generation last made durable: the entry is dirty while they differ.
 */
export class ChunkEntry {
  readonly valid: Uint8Array;
  validCount = 0;
  gen = 0;
  flushedGen = 0;
  lastWrite = 0;
  /** When the last flush attempt failed: the flusher backs off from it. */
  failedAt = 0;
  failures = 0;
  pins = 0;
  flushing: Promise<void> | undefined;
  filling: Promise<void> | undefined;
  removed = false;
  /**
   * The buffer an upload in flight is sending, if any. A write to the entry then first
   * moves it to a copy (copy-on-write), so uploads need no snapshot copy of their own.
   */
  uploading: Buffer | undefined;
  /**
   * Reads holding a view of `buf` (no copy) that may still be on their way to the initiator:
   * while there are any, the next write to the entry moves to a copy first, like an upload.
   */
  readers = 0;

  constructor(
    readonly index: number,
    public buf: Buffer,
  ) {
    this.valid = new Uint8Array(buf.length / SECTOR);
  }

  get dirty(): boolean {
    return this.gen !== this.flushedGen;
  }

  get fullyValid(): boolean {
    return this.validCount === this.valid.length;
  }

  covers(offset: number, length: number): boolean {
    if (this.fullyValid) return true;
    for (let s = offset / SECTOR, e = (offset + length) / SECTOR; s < e; s++) if (!this.valid[s]) return false;
    return true;
  }

  markValid(offset: number, length: number): void {
    for (let s = offset / SECTOR, e = (offset + length) / SECTOR; s < e; s++) {
      if (!this.valid[s]) {
        this.valid[s] = 1;
        this.validCount++;
      }
    }
  }

  /** Fills every sector not yet valid from `base` (zeros when null), then all are valid. */
  mergeBase(base: Buffer | null): void {
    if (this.fullyValid) return;
    this.prepareWrite();
    let s = 0;
    const n = this.valid.length;
    while (s < n) {
      if (this.valid[s]) {
        s++;
        continue;
      }
      let e = s;
      while (e < n && !this.valid[e]) e++;
      if (base) base.copy(this.buf, s * SECTOR, s * SECTOR, e * SECTOR);
      else this.buf.fill(0, s * SECTOR, e * SECTOR);
      s = e;
    }
    this.valid.fill(1);
    this.validCount = n;
  }

  /** Before modifying `buf`: leave an uploading or read buffer to its readers and take a copy. */
  prepareWrite(): void {
    if (this.uploading === this.buf || this.readers > 0) {
      this.buf = Buffer.from(this.buf);
      this.readers = 0;
    }
  }

  /**
   * A reader takes a view of `buf`; the returned function ends it (once; a no-op if a write
   * has since moved the entry to a copy, whose count starts afresh).
   */
  lend(): () => void {
    const buf = this.buf;
    this.readers++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (this.buf === buf) this.readers--;
    };
  }

  get busy(): boolean {
    return this.pins > 0 || this.flushing !== undefined || this.filling !== undefined;
  }
}

/**
 * The chunk cache: dirty chunks waiting for the flusher and clean chunks kept for reads, bounded
 * by a number of chunk buffers. When it is full of dirty chunks a writer waits for a flush to
 * free space (back-pressure) instead of growing.
 */
export class ChunkCache {
  private readonly entries = new Map<number, ChunkEntry>();
  private spaceWaiters: Array<() => void> = [];
  private dirtyCount = 0;

  constructor(
    readonly chunkSize: number,
    readonly capacity: number,
  ) {}

  get(i: number): ChunkEntry | undefined {
    return this.entries.get(i);
  }

  /** Marks an entry most recently used (Map order is the LRU order). */
  touch(e: ChunkEntry): void {
    if (this.entries.get(e.index) === e) {
      this.entries.delete(e.index);
      this.entries.set(e.index, e);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get dirtyEntries(): number {
    return this.dirtyCount;
  }

  get dirtyBytes(): number {
    return this.dirtyCount * this.chunkSize;
  }

  values(): IterableIterator<ChunkEntry> {
    return this.entries.values();
  }

  /** Call after any change of an entry's dirty state. */
  recount(): void {
    let n = 0;
    for (const e of this.entries.values()) if (e.dirty) n++;
    this.dirtyCount = n;
    this.wake();
  }

  noteDirtied(wasDirty: boolean, e: ChunkEntry): void {
    if (!wasDirty && e.dirty) this.dirtyCount++;
  }

  noteCleaned(e: ChunkEntry): void {
    if (!e.dirty) this.dirtyCount = Math.max(0, this.dirtyCount - 1);
  }

  /** An entry stopped being busy (upload or fill done): a waiting writer may evict it now. */
  noteIdle(e: ChunkEntry): void {
    if (!e.busy && !e.dirty) this.wake();
  }

  /**
   * An entry for writing chunk i, waiting for space when the cache is full of dirty chunks.
   * The entry comes back pinned: between this return and the caller's copy another writer may
   * be evicting, and a new entry is clean (so evictable) until it is written. The caller
   * unpins it once the data is in.
   */
  async forWrite(i: number, onFull: () => void, timeoutMs: number): Promise<ChunkEntry> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const existing = this.entries.get(i);
      if (existing) {
        existing.pins++;
        return existing;
      }
      if (this.entries.size < this.capacity || this.evictOne()) {
        const e = new ChunkEntry(i, Buffer.allocUnsafe(this.chunkSize));
        e.pins++;
        this.entries.set(i, e);
        return e;
      }
      onFull();
      const left = deadline - Date.now();
      if (left <= 0) throw new StorageError('unavailable', 'write cache full of chunks that cannot be flushed');
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 1000));
        this.spaceWaiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Adds a clean chunk read from the store, only if there is room without waiting. */
  insertClean(i: number, data: Buffer): ChunkEntry | undefined {
    if (this.entries.has(i)) return undefined;
    if (this.entries.size >= this.capacity && !this.evictOne()) return undefined;
    const e = new ChunkEntry(i, data);
    e.valid.fill(1);
    e.validCount = e.valid.length;
    this.entries.set(i, e);
    return e;
  }

  remove(e: ChunkEntry): void {
    if (this.entries.get(e.index) !== e) return;
    this.entries.delete(e.index);
    e.removed = true;
    if (e.dirty) this.dirtyCount = Math.max(0, this.dirtyCount - 1);
    this.wake();
  }

  /** Evicts the least recently used clean, idle entry. */
  private evictOne(): boolean {
    for (const e of this.entries.values()) {
      if (!e.dirty && !e.busy) {
        this.remove(e);
        return true;
      }
    }
    return false;
  }

  /** Drops clean entries (tests, memory pressure). */
  dropClean(): void {
    for (const e of [...this.entries.values()]) if (!e.dirty && !e.busy) this.remove(e);
  }

  private wake(): void {
    const w = this.spaceWaiters;
    if (w.length === 0) return;
    this.spaceWaiters = [];
    for (const r of w) r();
  }
}
