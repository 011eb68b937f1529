import type { Clock } from '../util/clock';
import { invariant } from '../util/invariant';
import { copyFrom, type Parts } from '../util/parts';
import { ChunkBufferPool } from './chunk-buffers';
import { ChunkEntry, type EntryState } from './chunk-entry';
import type { ChunkMap, Fetched } from './chunk-map';
import { StorageError } from './errors';
import { Flusher } from './flusher';
import type { Lane } from './object-store';
import { SegmentCache } from './segment-cache';
import type { VolumeStats } from './volume-stats';
import type { WriteGate } from './write-gate';

export interface WritebackOptions {
  /** Chunk buffers the cache may hold (dirty plus clean). */
  readonly capacity: number;
  /** A dirty chunk is uploaded once it has not been written for this long. */
  readonly flushDelayMs: number;
  /** How long a writer waits for cache space before failing retryably (below initiator timeouts). */
  readonly spaceTimeoutMs: number;
}

/**
 * The chunk cache and its way to the store: entries (chunk-entry.ts) with their state machine,
 * changed only here; chunk buffers from a pool; the background flusher; back-pressure when the
 * cache is full of dirty chunks; and `durable`, the one step that makes a generation of a
 * chunk durable (today an upload through the ChunkMap; a local journal will plug in here).
 */
export class Writeback {
  private readonly entries = new Map<number, ChunkEntry>();
  /** Segments small reads fetched, in the cache's free room. */
  readonly segments: SegmentCache;
  private readonly pool: ChunkBufferPool;
  private readonly zero: Buffer;
  private dirtyCount = 0;
  private spaceWaiters: Array<() => void> = [];
  private readonly flusher: Flusher;

  constructor(
    private readonly map: ChunkMap,
    private readonly chunkSize: number,
    private readonly options: WritebackOptions,
    private readonly clock: Clock,
    gate: WriteGate,
    private readonly stats: VolumeStats,
  ) {
    this.pool = new ChunkBufferPool(chunkSize, Math.min(16, options.capacity));
    this.segments = new SegmentCache(chunkSize);
    this.zero = Buffer.alloc(chunkSize);
    this.flusher = new Flusher(
      { entries: () => this.entries.values(), dirty: () => this.dirtyCount, durable: (e) => this.durable(e, e.gen, 'flush'), name: map.layout.name },
      { capacity: options.capacity, flushDelayMs: options.flushDelayMs },
      clock,
      gate,
    );
  }

  get(i: number): ChunkEntry | undefined {
    return this.entries.get(i);
  }

  get dirtyEntries(): number {
    return this.dirtyCount;
  }

  get size(): number {
    return this.entries.size;
  }

  get capacity(): number {
    return this.options.capacity;
  }

  /** Marks an entry most recently used (Map order is the LRU order). */
  touch(e: ChunkEntry): void {
    if (this.entries.get(e.index) !== e) return;
    this.entries.delete(e.index);
    this.entries.set(e.index, e);
  }

  /** True when the whole chunk is known to be zeros (a full, all-zero entry). */
  isZero(e: ChunkEntry): boolean {
    return e.fullyValid && e.buf.equals(this.zero);
  }

  // ---------------------------------------------------------------- reads

  /**
   * Keeps what a read fetched, if it is still the store's content and there is room without
   * waiting: a whole chunk becomes a clean entry (adopting the fetched buffer itself); a part
   * becomes more valid sectors of a clean entry, or segments in the free room (never at the
   * cost of a chunk). Returns the entry holding the bytes, if any.
   */
  adopt(i: number, f: Fetched): ChunkEntry | undefined {
    if (!f.body || !this.map.stillCurrent(i, f)) return undefined;
    const whole = f.offset === 0 && f.body.length === this.chunkSize;
    let e = this.entries.get(i);
    if (e) {
      if (e.state === 'clean') e.merge(f.body, f.offset, f.offset, f.offset + f.body.length);
      return e.state === 'clean' ? e : undefined;
    }
    if (!whole) {
      if (this.entries.size + this.segments.slots < this.options.capacity || this.segments.size % this.segments.perChunk !== 0) {
        this.segments.keep(i, f.offset, f.body);
        while (this.entries.size + this.segments.slots > this.options.capacity) this.segments.shrink();
      }
      return undefined;
    }
    if (!this.room()) return undefined;
    this.segments.drop(i);
    e = new ChunkEntry(i, f.body, 'clean');
    e.markValid(0, this.chunkSize);
    this.entries.set(i, e);
    return e;
  }

  /** Brings in the stored base of a dirty entry's missing sectors (once, shared). */
  async fill(e: ChunkEntry, lane: Lane): Promise<void> {
    while (!e.fullyValid && e.state !== 'dirty') {
      if (!e.busy) return; // clean and partial: the caller reads from the store
      await e.busy;
    }
    if (e.fullyValid) return;
    const done = this.begin(e, 'filling');
    try {
      const base = await this.map.fetchWhole(e.index, lane);
      e.merge(base.body, 0, 0, this.chunkSize);
      this.stats.baseFetches++;
    } finally {
      this.end(e, 'dirty', done);
    }
  }

  // ---------------------------------------------------------------- writes

  /**
   * The entry a write of chunk i goes into, pinned (the caller writes, then unpins). When the
   * cache is full of dirty chunks it starts flushes and waits for room, at most
   * `spaceTimeoutMs`, then fails retryably.
   */
  async entryForWrite(i: number): Promise<ChunkEntry> {
    const deadline = this.clock.now() + this.options.spaceTimeoutMs;
    for (;;) {
      const found = this.entries.get(i);
      if (found) {
        invariant(found.state !== 'discarding', () => `chunk ${i}: written while being discarded`);
        found.pins++;
        return found;
      }
      if (this.room()) {
        this.segments.drop(i); // the chunk is about to change
        const e = new ChunkEntry(i, this.pool.take(), 'clean');
        e.pins++;
        this.entries.set(i, e);
        return e;
      }
      this.stats.backPressureWaits++;
      this.flusher.flushOldest();
      const left = deadline - this.clock.now();
      if (left <= 0) throw new StorageError('unavailable', 'write cache full of chunks that cannot be flushed');
      await new Promise<void>((resolve) => {
        const woken = (): void => {
          t.cancel();
          resolve();
        };
        const t = this.clock.after(Math.min(left, 1000), () => {
          const at = this.spaceWaiters.indexOf(woken);
          if (at >= 0) this.spaceWaiters.splice(at, 1);
          resolve();
        });
        this.spaceWaiters.push(woken);
      });
    }
  }

  /** Copies `len` bytes of `data` from `from` into a pinned entry at `inner`; returns the new generation. */
  write(e: ChunkEntry, data: Buffer | Parts, from: number, inner: number, len: number): number {
    invariant(e.pins > 0 && e.state !== 'discarding' && e.state !== 'evicted', () => `chunk ${e.index}: written in state ${e.state}`);
    const wasDirty = e.dirty;
    if (e.needsCopy()) {
      const copy = this.pool.take();
      e.buf.copy(copy);
      e.buf = copy;
      e.readers = 0;
    }
    copyFrom(data, from, e.buf, inner, len);
    e.markValid(inner, len);
    e.gen++;
    e.lastWrite = this.clock.now();
    if (!wasDirty) e.dirtySince = e.lastWrite;
    if (e.state === 'clean') e.to('dirty');
    this.account(e, wasDirty);
    this.touch(e);
    return e.gen;
  }

  unpin(e: ChunkEntry): void {
    invariant(e.pins > 0, () => `chunk ${e.index}: unpinned more than pinned`);
    e.pins--;
    if (e.pins === 0 && e.state === 'clean') this.wake();
  }

  /**
   * THE durability step: returns once generation `gen` of the entry (or a later one) is
   * durable, i.e. in the store, or superseded by a discard that completed. FUA, write-through,
   * SYNCHRONIZE CACHE and the flusher all end here.
   */
  async durable(e: ChunkEntry, gen: number, lane: Lane): Promise<void> {
    for (;;) {
      if (e.durableGen >= gen || e.state === 'evicted') return;
      if (e.busy) {
        await e.busy;
        continue;
      }
      if (!e.fullyValid) {
        await this.fill(e, lane);
        continue;
      }
      await this.upload(e, lane);
    }
  }

  private async upload(e: ChunkEntry, lane: Lane): Promise<void> {
    const done = this.begin(e, 'uploading');
    const gen = e.gen;
    const body = e.buf;
    e.uploading = body;
    e.uploadGen = gen;
    const started = this.clock.now();
    try {
      await this.map.write(e.index, body, lane, body.equals(this.zero));
      invariant(gen > e.durableGen, () => `chunk ${e.index}: generation ${gen} uploaded after ${e.durableGen}`);
      const wasDirty = e.dirty;
      e.durableGen = gen;
      e.failures = 0;
      this.account(e, wasDirty);
      this.stats.flushLatency.observe((this.clock.now() - started) / 1000);
    } catch (err) {
      e.failures++;
      e.retryAt = this.clock.now() + Math.min(5000, 100 * 2 ** e.failures);
      this.stats.flushErrors++;
      throw err;
    } finally {
      if (e.uploading === body) e.uploading = undefined;
      e.uploadGen = 0;
      this.end(e, e.dirty ? 'dirty' : 'clean', done);
    }
  }

  /** Makes every entry of chunks [first, last) durable (SYNCHRONIZE CACHE, close). */
  async flushAll(first: number, last: number): Promise<void> {
    const work: Promise<void>[] = [];
    for (const e of this.entries.values()) {
      if (e.index >= first && e.index < last && (e.dirty || e.state === 'discarding')) work.push(this.durable(e, e.gen, 'foreground'));
    }
    await Promise.all(work);
  }

  /**
   * Discards whole chunks: their entries (whatever they held) wait for any upload in flight,
   * stay cached as `discarding` while the ChunkMap deletes the objects, and are evicted once it
   * has; if it fails they are back as they were, with their data. The caller holds the chunks'
   * range lock, so nothing else reads or writes them meanwhile (read-ahead may still bring
   * them in: see `gather`).
   */
  async discard(indexes: readonly number[], lane: Lane): Promise<void> {
    const held = new Set<ChunkEntry>();
    // Read-ahead and PRE-FETCH take no range lock: while this waits for an upload, a GET of
    // another of these chunks may land and become an entry. Gather again after every wait.
    const gather = (): void => {
      for (const i of indexes) {
        const e = this.entries.get(i);
        if (e && !held.has(e)) {
          e.pins++;
          held.add(e);
        }
      }
    };
    gather();
    try {
      const busyOne = (): ChunkEntry | undefined => [...held].find((e) => !e.idle);
      for (let busy = busyOne(); busy; busy = busyOne()) {
        await busy.busy;
        gather();
      }
      for (const i of indexes) this.segments.drop(i);
      // From here to the ChunkMap registering the DELETEs, nothing waits: no fetch started
      // before can land in the cache after (see ChunkMap.stillCurrent).
      const dones = [...held].map((e) => ({ e, was: e.state, done: this.begin(e, 'discarding') }));
      try {
        await this.map.discard(indexes, lane);
      } catch (err) {
        // The DELETE may have landed: the store may no longer hold what a clean entry has, so
        // every entry is dirty again and its data goes back (each block: old data or zeros).
        for (const d of dones) {
          const wasDirty = d.e.dirty;
          if (!wasDirty) d.e.gen++;
          this.end(d.e, 'dirty', d.done);
          this.account(d.e, wasDirty);
        }
        throw err;
      }
      for (const d of dones) {
        this.end(d.e, 'evicted', d.done);
      }
    } finally {
      for (const e of held) e.pins--;
      this.wake();
    }
  }

  // ---------------------------------------------------------------- room

  /** Drops clean idle entries (tests: force reads to go to the store). */
  dropClean(): void {
    this.segments.clear();
    for (const e of [...this.entries.values()]) if (e.state === 'clean' && e.pins === 0) this.end(e, 'evicted');
  }

  stop(): void {
    this.flusher.stop();
  }

  /** Room for one more entry without waiting: below capacity, segments to give up, or a clean idle entry to evict. */
  private room(): boolean {
    if (this.entries.size + this.segments.slots < this.options.capacity) return true;
    if (this.segments.shrink() && this.entries.size + this.segments.slots < this.options.capacity) return true;
    for (const e of this.entries.values()) {
      if (e.state === 'clean' && e.pins === 0) {
        this.end(e, 'evicted');
        return true;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- state changes

  /** Enters a busy state (filling, uploading, discarding); returns what `end` resolves. */
  private begin(e: ChunkEntry, state: 'filling' | 'uploading' | 'discarding'): () => void {
    e.to(state);
    let done!: () => void;
    e.busy = new Promise<void>((r) => {
      done = r;
    });
    return done;
  }

  /** Leaves a busy state (or evicts a clean entry); the one place entries leave the cache. */
  private end(e: ChunkEntry, state: EntryState, done?: () => void): void {
    e.to(state);
    if (done) {
      e.busy = undefined;
      done();
    }
    if (state === 'evicted') {
      this.entries.delete(e.index);
      if (e.dirty) {
        // Only a completed discard evicts unflushed data: the discard superseded it.
        this.dirtyCount--;
        invariant(this.dirtyCount >= 0, () => `dirty count ${this.dirtyCount} after evicting chunk ${e.index}`);
      }
      if (e.readers === 0 && e.uploading === undefined) this.pool.give(e.buf);
    }
    if (state === 'clean' || state === 'evicted') this.wake();
  }

  private account(e: ChunkEntry, wasDirty: boolean): void {
    if (wasDirty === e.dirty) return;
    this.dirtyCount += e.dirty ? 1 : -1;
    invariant(this.dirtyCount >= 0 && this.dirtyCount <= this.entries.size, () => `dirty count ${this.dirtyCount} of ${this.entries.size}`);
  }

  private wake(): void {
    const w = this.spaceWaiters;
    if (w.length === 0) return;
    this.spaceWaiters = [];
    for (const r of w) r();
  }
}
