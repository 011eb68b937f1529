import type { Clock } from '../util/clock';
import { invariant } from '../util/invariant';
import { forEachParallel } from '../util/parallel';
import { copyFrom, type Parts } from '../util/parts';
import { WakeList } from '../util/wake-list';
import { ChunkBufferPool } from './chunk-buffers';
import { ChunkEntry, type EntryState } from './chunk-entry';
import type { ChunkMap, Fetched } from './chunk-map';
import { StorageError } from './errors';
import { FLUSH_PARALLEL, Flusher } from './flusher';
import type { LunJournal } from './journal/lun-journal';
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
  /** How long a SYNCHRONIZE CACHE's drain yields to reads; DRAIN_READS_FIRST_MS if unset. */
  readonly drainReadsFirstMs?: number;
}

/**
 * How long a SYNCHRONIZE CACHE's uploads yield to reads (the I/O pool's flush lane keeps to a
 * few slots while reads wait); the rest of the drain then goes as foreground I/O. The
 * initiator waits for the whole drain: Linux gives SYNCHRONIZE CACHE twice the device's
 * timeout (sd.c, SD_FLUSH_TIMEOUT_MULTIPLIER: 60 s by default), Windows' disk class 60 s
 * (TimeOutValue). A full 2 GiB cache takes 37-48 s to drain into RGW here at full speed
 * (bench/qos.ts), so reads first, but only for a sixth of that timeout.
 */
export const DRAIN_READS_FIRST_MS = 10_000;

/**
 * Chunks a sequential reader brought in (read-ahead, or whole-chunk misses of a sequential
 * run) that the cache keeps at most once they have been read: beyond it, the next one
 * reuses the buffer of the oldest read one. A backup or a restore streaming a disk then
 * does not push the working set out of the cache (LRU alone would), and it streams through
 * recycled buffers instead of touching fresh memory (a page fault per 4 KiB: a quarter of
 * the CPU of a cold sequential read from RGW here, bench/profile.ts s3-read-1m).
 */
export const STREAMED_CHUNKS = 64;

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
  private readonly spaceWaiters: WakeList;
  private readonly flusher: Flusher;
  /** The LUN's journal, once attached (after replay): writes are durable there, uploads retire them. */
  private journal: LunJournal | undefined;
  /** Chunks a discard is deleting: the flusher does not bring them back from the journal meanwhile. */
  private readonly discarding = new Set<number>();
  /**
   * Clean entries a sequential reader brought in, oldest first, and whether one has read each
   * (see STREAMED_CHUNKS). A write, or a read outside a sequential run, makes one an ordinary
   * cached chunk.
   */
  private readonly streamed = new Map<ChunkEntry, 'unread' | 'read'>();

  constructor(
    private readonly map: ChunkMap,
    private readonly chunkSize: number,
    private readonly options: WritebackOptions,
    private readonly clock: Clock,
    gate: WriteGate,
    private readonly stats: VolumeStats,
  ) {
    this.pool = new ChunkBufferPool(chunkSize, Math.min(16, options.capacity));
    this.spaceWaiters = new WakeList(clock);
    this.segments = new SegmentCache(chunkSize, map.segmentSize);
    this.zero = Buffer.alloc(chunkSize);
    this.flusher = new Flusher(
      {
        entries: () => this.entries.values(),
        dirty: () => this.dirtyCount,
        durable: (e, lane) => this.durable(e, e.gen, lane),
        spilled: () => this.spilledChunks(),
        restore: (i, spill) => this.restoreInBackground(i, spill),
        journaled: () => this.journal?.uploadDelayMs,
        journalPressure: () => this.journal?.pressure() ?? false,
        pendingSince: (i) => this.journal?.pendingSince(i),
        name: map.layout.name,
      },
      { capacity: options.capacity, flushDelayMs: options.flushDelayMs },
      clock,
      gate,
    );
  }

  get(i: number): ChunkEntry | undefined {
    return this.entries.get(i);
  }

  /** From now on every write is journaled, and an upload retires the records it covers. */
  attachJournal(j: LunJournal): void {
    this.journal = j;
  }

  /** The chunk's latest data is only in the journal (not cached, records not yet in S3). */
  spilled(i: number): boolean {
    return !this.entries.has(i) && (this.journal?.hasPending(i) ?? false);
  }

  private *spilledChunks(): Generator<number> {
    if (!this.journal) return;
    for (const i of this.journal.pendingChunks()) if (!this.entries.has(i)) yield i;
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
  adopt(i: number, f: Fetched, stream = false): ChunkEntry | undefined {
    if (!f.body || !this.map.stillCurrent(i, f) || this.spilled(i)) return undefined;
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
    if (stream) this.trimStream(); // when the GET did not read into a buffer from takeBuffer
    if (!this.room()) return undefined;
    this.segments.drop(i);
    e = new ChunkEntry(i, f.body, 'clean');
    e.markValid(0, this.chunkSize);
    this.entries.set(i, e);
    if (stream) this.streamed.set(e, 'unread');
    // Every caller that joined this GET resumes with this very buffer in the microtasks after
    // this one, some holding a view of it. Until they all have (the next macrotask) it counts
    // as read: an eviction meanwhile abandons it instead of giving it back to the pool.
    setImmediate(e.lend());
    return e;
  }

  /**
   * A chunk buffer for a whole-chunk GET's body: recycled when an evicted entry gave one back.
   * For a sequential reader, with STREAMED_CHUNKS of its chunks cached, the oldest one read
   * is evicted first, so its buffer is the one recycled.
   */
  takeBuffer(stream = false): Buffer {
    if (stream) this.trimStream();
    return this.pool.take();
  }

  /**
   * With STREAMED_CHUNKS streamed chunks cached, evicts the oldest one read (its buffer goes
   * back to the pool once no view of it is lent: its Data-In was sent long ago).
   */
  private trimStream(): void {
    if (this.streamed.size < Math.min(STREAMED_CHUNKS, this.options.capacity / 2)) return;
    for (const [e, use] of this.streamed) {
      if (use === 'read' && e.state === 'clean' && e.pins === 0) {
        this.end(e, 'evicted');
        this.stats.streamedEvictions++;
        return;
      }
    }
  }

  /**
   * A reader got bytes of entry `e`: one in a sequential run marks a streamed chunk read (its
   * buffer may go to the next chunk of the stream); any other keeps it as an ordinary chunk.
   */
  readBy(e: ChunkEntry, sequential: boolean): void {
    if (!this.streamed.has(e)) return;
    if (sequential) this.streamed.set(e, 'read');
    else this.streamed.delete(e);
  }

  /**
   * Brings in what a dirty entry's missing sectors hold: its journal records if it was
   * restored from the journal, then the stored base (once, shared). A reader passes the range
   * it needs: what the journal gave may be enough.
   */
  async fill(e: ChunkEntry, lane: Lane, need?: { readonly offset: number; readonly length: number }): Promise<void> {
    while (!e.fullyValid && e.state !== 'dirty') {
      if (!e.busy) return; // clean and partial: the caller reads from the store
      await e.busy;
    }
    if (e.fullyValid) return;
    const done = this.begin(e, 'filling');
    try {
      const j = this.journal;
      if (e.journalBase && j) {
        // Older than anything written since the restore: they fill only the sectors still missing.
        e.mergeRecords(await j.pendingRecords(e.index));
        e.journalBase = false;
      }
      if (!e.fullyValid && !(need && e.covers(need.offset, need.length))) {
        const base = await this.map.fetchWhole(e.index, lane);
        e.merge(base.body, 0, 0, this.chunkSize);
        this.stats.baseFetches++;
      }
    } finally {
      this.end(e, 'dirty', done);
    }
  }

  // ---------------------------------------------------------------- writes

  /**
   * The entry a write of chunk i goes into (or a read of a spilled chunk), pinned: the caller
   * uses it, then unpins. A spilled chunk comes back as an entry its records fill later (see restore). When the cache
   * is full it evicts a clean chunk, or spills a journaled dirty one; failing both it starts
   * flushes and waits for room, at most `spaceTimeoutMs`, then fails retryably.
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
      if (this.journal?.hasPending(i)) {
        if (this.room(true)) {
          const e = this.restore(i);
          e.pins++;
          return e;
        }
        await this.waitForRoom(deadline);
        continue;
      }
      if (this.room(true)) {
        this.segments.drop(i); // the chunk is about to change
        const e = new ChunkEntry(i, this.pool.take(), 'clean');
        e.pins++;
        this.entries.set(i, e);
        return e;
      }
      await this.waitForRoom(deadline);
    }
  }

  /**
   * A writer found the cache full. With a journal, a dirty entry whose records are not yet
   * fsynced becomes spillable at the fsync: wait for that. Otherwise start flushes (without a
   * journal: a spill makes no upload busy) and wait until woken, or a second; fail at the
   * deadline.
   */
  private async waitForRoom(deadline: number): Promise<void> {
    this.stats.backPressureWaits++;
    const left = deadline - this.clock.now();
    if (left <= 0) throw new StorageError('unavailable', 'write cache full of chunks that cannot be flushed');
    const j = this.journal;
    if (j) {
      for (const e of this.entries.values()) {
        if (e.state === 'dirty' && e.pins === 0 && !e.unjournaled && e.journalSeq > j.durableThrough) {
          await j.sync();
          return;
        }
      }
    } else this.flusher.flushOldest();
    await this.spaceWaiters.wait(Math.min(left, 1000));
  }

  /**
   * Brings a spilled chunk back (the caller made room): a dirty entry with nothing valid yet,
   * whose missing sectors come first from its journal records, then from the store, when a
   * read or an upload needs them (`fill`). A write needs neither: it lands at once.
   */
  private restore(i: number): ChunkEntry {
    const e = new ChunkEntry(i, this.pool.take(), 'dirty');
    e.journalBase = true;
    e.gen = 1;
    e.lastWrite = this.clock.now();
    // Dirty since its oldest record: the flusher's bound on how long data waits for S3 holds.
    e.dirtySince = this.journal?.pendingSince(i) ?? e.lastWrite;
    this.segments.drop(i);
    this.entries.set(i, e);
    this.account(e, false);
    this.stats.journalRestores++;
    return e;
  }

  /** The flusher's way to upload a spilled chunk: restored only if there is room now (or, `spill`, can be made). */
  private async restoreInBackground(i: number, spill: boolean): Promise<ChunkEntry | undefined> {
    // A chunk being discarded is left alone: its records go when the DELETE is done.
    if (this.entries.has(i) || this.discarding.has(i) || !this.journal?.hasPending(i) || !this.room(spill)) return undefined;
    return this.restore(i);
  }

  /**
   * Copies `len` bytes of `data` from `from` into a pinned entry at `inner`; returns the new
   * generation. `journalSeq`: the journal record holding the same bytes (numbered in this
   * synchronous step), or undefined for a write no journal holds.
   */
  write(e: ChunkEntry, data: Buffer | Parts, from: number, inner: number, len: number, journalSeq?: number): number {
    invariant(e.pins > 0 && e.state !== 'discarding' && e.state !== 'evicted', () => `chunk ${e.index}: written in state ${e.state}`);
    const wasDirty = e.dirty;
    if (e.needsCopy()) {
      const copy = this.pool.take();
      e.buf.copy(copy);
      e.buf = copy;
      e.readers = 0;
    }
    copyFrom(data, from, e.buf, inner, len);
    this.streamed.delete(e);
    e.markValid(inner, len);
    e.gen++;
    if (journalSeq === undefined) e.unjournaled = true;
    else {
      invariant(journalSeq > e.journalSeq, () => `chunk ${e.index}: journal record ${journalSeq} after ${e.journalSeq}`);
      e.journalSeq = journalSeq;
    }
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
    // Idle: a clean entry can be evicted, a journaled dirty one spilled.
    if (e.pins === 0 && (e.state === 'clean' || (this.journal && e.state === 'dirty'))) this.wake();
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
    const journalSeq = e.journalSeq;
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
      if (!e.dirty) e.unjournaled = false;
      // Every record of the chunk up to journalSeq is in the body just stored.
      if (journalSeq > 0) this.journal?.retire(e.index, journalSeq);
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

  /**
   * Makes every entry of chunks [first, last) durable in the store (SYNCHRONIZE CACHE without a
   * journal, close), spilled chunks included: each is restored (a few at a time) and uploaded.
   */
  async flushAll(first: number, last: number): Promise<void> {
    // On the flush lane, not the foreground one: a SYNCHRONIZE CACHE of a full cache is
    // thousands of uploads, and reads queued behind them would wait for the whole drain
    // (s3backer's issue #132). The pool gives a freed slot to a foreground waiter first and
    // caps the flush lane below its size, so reads keep going while the cache drains; while
    // reads wait it keeps the flush lane to a few uploads, for DRAIN_READS_FIRST_MS at most.
    // A few uploads at a time: each request's wait for a pool slot is bounded (the retry
    // deadline), and a drain longer than that must not fail the uploads queued last.
    const dirty: Array<[ChunkEntry, number]> = [];
    for (const e of this.entries.values()) {
      if (e.index >= first && e.index < last && (e.dirty || e.state === 'discarding')) dirty.push([e, e.gen]);
    }
    const yieldUntil = this.clock.now() + (this.options.drainReadsFirstMs ?? DRAIN_READS_FIRST_MS);
    const lane = (): Lane => (this.clock.now() < yieldUntil ? 'flush' : 'foreground');
    await forEachParallel(dirty.length, FLUSH_PARALLEL, (k) => this.durable(dirty[k][0], dirty[k][1], lane()));
    const spilled = [...this.spilledChunks()].filter((i) => i >= first && i < last);
    await forEachParallel(spilled.length, 8, async (k) => {
      const e = await this.entryForWrite(spilled[k]);
      this.unpin(e);
      await this.durable(e, e.gen, lane());
    });
  }

  /**
   * Discards whole chunks: their entries (whatever they held) wait for any upload in flight,
   * stay cached as `discarding` while the ChunkMap deletes the objects, and are evicted once it
   * has; if it fails they are back as they were, with their data. The caller holds the chunks'
   * range lock, so nothing else reads or writes them meanwhile (read-ahead may still bring
   * them in: see `gather`).
   */
  discard(indexes: readonly number[], lane: Lane, journalSeqs?: ReadonlyMap<number, number>): Promise<void> {
    return this.replaceStored(indexes, () => this.map.discard(indexes, lane), journalSeqs);
  }

  /**
   * Server-side copies into whole chunks (ChunkMap.copyIn): like a discard, what the cache
   * held for them is superseded by what the store will hold, so the entries go the same way.
   */
  copyIn(pairs: readonly { readonly index: number; readonly from: string }[], lane: Lane): Promise<void> {
    invariant(!this.journal, () => `${this.map.layout.name}: a server-side copy into a journal LUN (a replay would undo it)`);
    return this.replaceStored(
      pairs.map((p) => p.index),
      () => this.map.copyIn(pairs, lane),
    );
  }

  /**
   * Replaces whole chunks in the store by `mutation` (DELETEs, copies): the chunks' entries
   * wait for any upload in flight, stay cached as `discarding` while the mutation runs, and
   * are evicted once it has; if it fails they are back as they were, with their data.
   */
  private async replaceStored(indexes: readonly number[], mutation: () => Promise<void>, journalSeqs?: ReadonlyMap<number, number>): Promise<void> {
    const held = new Set<ChunkEntry>();
    for (const i of indexes) this.discarding.add(i);
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
        await mutation();
      } catch (err) {
        // The mutation may have landed: the store may no longer hold what a clean entry has, so
        // every entry is dirty again and its data goes back (each block: old data or zeros).
        for (const d of dones) {
          const wasDirty = d.e.dirty;
          if (!wasDirty) d.e.gen++;
          // Its next upload also retires the discard's record (the data it stores is newer).
          const seq = journalSeqs?.get(d.e.index);
          if (seq !== undefined && seq > d.e.journalSeq) d.e.journalSeq = seq;
          this.end(d.e, 'dirty', d.done);
          this.account(d.e, wasDirty);
        }
        throw err;
      }
      for (const d of dones) {
        this.end(d.e, 'evicted', d.done);
      }
      // The objects are gone: every record of these chunks up to the discard's is superseded.
      if (journalSeqs) for (const [i, seq] of journalSeqs) this.journal?.retire(i, seq);
    } finally {
      for (const e of held) e.pins--;
      for (const i of indexes) this.discarding.delete(i);
      this.wake();
    }
  }

  // ---------------------------------------------------------------- room

  /**
   * Forgets everything cached, because the store's chunks are about to be replaced behind the
   * cache (an online restore). The caller holds every writer and reader off and has flushed,
   * so every entry is clean; it waits for fills in flight and pinned entries, at most
   * `deadlineMs`, then evicts them all (throws a retryable error before anything was
   * forgotten if one is still in use then). A reader still holding a view (a Data-In being
   * sent) keeps its bytes: a buffer with readers never goes back to the pool.
   */
  async forgetAll(deadlineMs: number): Promise<void> {
    const deadline = this.clock.now() + deadlineMs;
    for (;;) {
      const busy = [...this.entries.values()].find((e) => !e.idle || e.pins > 0);
      if (!busy) break;
      if (this.clock.now() > deadline) {
        throw new StorageError('unavailable', `chunk ${busy.index} of ${this.map.layout.name} is still in use; try again`);
      }
      if (busy.busy) await busy.busy;
      else await this.clock.sleep(5);
    }
    this.segments.clear();
    for (const e of [...this.entries.values()]) {
      invariant(!e.dirty, () => `chunk ${e.index}: dirty while the store is replaced behind the cache`);
      this.end(e, 'evicted');
    }
  }

  /** Drops clean idle entries (tests: force reads to go to the store). */
  dropClean(): void {
    this.segments.clear();
    for (const e of [...this.entries.values()]) if (e.state === 'clean' && e.pins === 0) this.end(e, 'evicted');
  }

  stop(): void {
    this.flusher.stop();
  }

  /**
   * Room for one more entry without waiting: below capacity, segments to give up, a clean idle
   * entry to evict, or (`spill`) an idle dirty entry whose every write is durable in the
   * journal, evicted to it (least recently used first).
   */
  private room(spill = false): boolean {
    if (this.entries.size + this.segments.slots < this.options.capacity) return true;
    if (this.segments.shrink() && this.entries.size + this.segments.slots < this.options.capacity) return true;
    for (const e of this.entries.values()) {
      if (e.state === 'clean' && e.pins === 0) {
        this.end(e, 'evicted');
        return true;
      }
    }
    const j = this.journal;
    if (!spill || !j) return false;
    for (const e of this.entries.values()) {
      if (e.state === 'dirty' && e.pins === 0 && !e.unjournaled && e.journalSeq <= j.durableThrough) {
        invariant(j.hasPending(e.index), () => `chunk ${e.index}: dirty, journaled, and no record pending`);
        this.end(e, 'evicted');
        this.stats.journalSpills++;
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
      this.streamed.delete(e);
      if (e.dirty) {
        // Only a completed discard (which superseded it) or a spill to the journal (which
        // holds it) evicts unflushed data.
        this.dirtyCount--;
        invariant(this.dirtyCount >= 0, () => `dirty count ${this.dirtyCount} after evicting chunk ${e.index}`);
      }
      if (e.readers === 0 && e.uploading === undefined) this.pool.give(e.buf);
    }
    if (state === 'clean' || state === 'evicted' || (this.journal && state === 'dirty')) this.wake();
  }

  private account(e: ChunkEntry, wasDirty: boolean): void {
    if (wasDirty === e.dirty) return;
    this.dirtyCount += e.dirty ? 1 : -1;
    invariant(this.dirtyCount >= 0 && this.dirtyCount <= this.entries.size, () => `dirty count ${this.dirtyCount} of ${this.entries.size}`);
  }

  private wake(): void {
    this.spaceWaiters.wake();
  }
}
