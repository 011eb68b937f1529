import { log } from '../util/log';
import { copyFrom, type Parts, partsLength } from '../util/parts';
import { AllocationMap } from './alloc-map';
import { ChunkCache, type ChunkEntry, SECTOR } from './chunk-cache';
import { isStorageError, StorageError } from './errors';
import { CRC_META_KEY, segmentAligned, segmentCrcs, verifySegments } from './integrity';
import type { LunLayout } from './layout';
import { type Lane, listAll, type ObjectStore } from './object-store';
import { RangeLock } from './range-lock';
import type { AllocationExtent, ByteRange, CacheMode, ReadView, Volume, VolumeInfo, WriteOptions } from './volume';
import { checkSize, writeVolumeSize } from './volume-meta';
import { VolumeStats } from './volume-stats';

export interface ChunkVolumeOptions {
  /** Cache size in bytes (dirty plus clean chunks). */
  readonly cacheBytes: number;
  readonly cacheMode: CacheMode;
  readonly readOnly: boolean;
  /** A dirty chunk is uploaded once it has not been written for this long. */
  readonly flushDelayMs: number;
  /** Chunks fetched ahead of a sequential reader. */
  readonly readAheadChunks: number;
  /**
   * How long a writer waits for cache space before failing with a retryable error; below the
   * initiators' command timeouts (Linux 30 s).
   */
  readonly spaceTimeoutMs: number;
}

export const DEFAULT_VOLUME_OPTIONS: ChunkVolumeOptions = {
  cacheBytes: 256 * 1024 * 1024,
  cacheMode: 'write-back',
  readOnly: false,
  flushDelayMs: 200,
  readAheadChunks: 8,
  spaceTimeoutMs: 20_000,
};

interface Piece {
  readonly index: number;
  /** Offset inside the chunk. */
  readonly inner: number;
  readonly length: number;
  /** Offset inside the caller's buffer. */
  readonly pos: number;
}

function* pieces(offset: number, length: number, chunkSize: number): Generator<Piece> {
  let pos = 0;
  while (pos < length) {
    const abs = offset + pos;
    const index = Math.floor(abs / chunkSize);
    const inner = abs - index * chunkSize;
    const len = Math.min(chunkSize - inner, length - pos);
    yield { index, inner, length: len, pos };
    pos += len;
  }
}

/** A read that holds nothing in the cache. */
const NO_RELEASE = (): void => undefined;

/**
 * A LUN cut into 1 MiB chunks, each one object of an ObjectStore (S3 or a directory). It
 * implements the Volume contract with:
 * - byte-range locks (overlapping commands in order, the rest in parallel);
 * - a write-back cache of chunks with per-sector validity, so a write never needs a GET and
 *   the stored base is fetched at most once, only for sectors nobody wrote;
 * - a background flusher, back-pressure when the cache is full of dirty chunks, and honest
 *   durability: FUA, SYNCHRONIZE CACHE and write-through return only once S3 has the data;
 * - per-chunk ordering of PUT/DELETE, zero detection (an all-zero chunk is deleted), CRC32C
 *   per 64 KiB segment checked on every read;
 * - an allocation map so holes cost no request, and read-ahead for sequential readers.
 */
export class ChunkVolume implements Volume {
  readonly stats = new VolumeStats();
  private readonly locks = new RangeLock();
  private readonly cache: ChunkCache;
  private readonly alloc: AllocationMap;
  private chunkCount: number;
  private infoValue: VolumeInfo;
  private readonly zeroChunk: Buffer;
  /** Per-chunk chain of store mutations, so a PUT and a later DELETE land in order. */
  private readonly ops = new Map<number, Promise<unknown>>();
  /** Store mutation sequence per chunk, to know whether a fetched copy is still current. */
  private readonly mutated = new Map<number, number>();
  private mutationSeq = 0;
  private fetchesInFlight = 0;
  /** Whole-chunk GETs in flight (reads and read-ahead): a second reader joins, never repeats it. */
  private readonly wholeFetches = new Map<number, Promise<{ body: Buffer; current: boolean } | null>>();
  private sequentialEnd = -1;
  private sequentialStreak = 0;
  private flusherTimer: NodeJS.Timeout | undefined;
  private backgroundFlushes = 0;
  private fencedError: StorageError | undefined;
  private suspendedError: StorageError | undefined;
  /** Signal carried by every store mutation: aborted when writes must stop (lease). */
  private writeGate = new AbortController();
  private closed = false;
  private mode: CacheMode;

  constructor(
    private readonly store: ObjectStore,
    readonly layout: LunLayout,
    info: VolumeInfo,
    private readonly options: ChunkVolumeOptions = DEFAULT_VOLUME_OPTIONS,
  ) {
    this.infoValue = info;
    this.chunkCount = Math.ceil(info.sizeBytes / info.chunkSize);
    this.cache = new ChunkCache(info.chunkSize, Math.max(4, Math.floor(options.cacheBytes / info.chunkSize)));
    this.alloc = new AllocationMap(this.chunkCount);
    this.zeroChunk = Buffer.alloc(info.chunkSize);
    this.mode = options.cacheMode;
    this.flusherTimer = setInterval(() => this.flushTick(), 50);
    this.flusherTimer.unref();
    // Opening never waits for the listing (ESXi's login timeout is 5 s).
    this.alloc.load(store, layout).catch(() => undefined);
  }

  get info(): VolumeInfo {
    return this.infoValue;
  }

  get readOnly(): boolean {
    return this.options.readOnly;
  }

  /**
   * Grows the LUN (s3tgt lun resize, or a larger size in the configuration). Chunk objects
   * past the old end (left by an older, larger life of the name) are deleted first, so the
   * new space reads as zeros; then volume.json records the size; then I/O may use it. The
   * caller tells the initiators (CAPACITY DATA HAS CHANGED, SBC-4 §4.10).
   */
  async grow(sizeBytes: number): Promise<VolumeInfo> {
    this.checkWritable();
    const old = this.infoValue;
    if (sizeBytes <= old.sizeBytes)
      throw new StorageError('invalid', `${this.layout.name}: new size ${sizeBytes} is not larger than ${old.sizeBytes}`);
    checkSize(sizeBytes);
    const stale: string[] = [];
    for await (const e of listAll(this.store, this.layout.chunksPrefix, { lane: 'background' })) {
      const i = this.layout.chunkIndexOf(e.key);
      if (i === undefined || i >= this.chunkCount) stale.push(e.key);
    }
    for (const key of stale) await this.store.delete(key, { signal: this.writeGate.signal });
    const next = await writeVolumeSize(this.store, this.layout, old, sizeBytes);
    this.alloc.grow(Math.ceil(sizeBytes / next.chunkSize));
    this.chunkCount = Math.ceil(sizeBytes / next.chunkSize);
    this.infoValue = next;
    log.info('LUN grown', { lun: this.layout.name, from: old.sizeBytes, to: sizeBytes, staleDeleted: stale.length });
    return next;
  }

  get cacheMode(): CacheMode {
    return this.mode;
  }

  get dirtyBytes(): number {
    return this.cache.dirtyBytes;
  }

  get cachedBytes(): number {
    return this.cache.size * this.info.chunkSize;
  }

  /**
   * The single-writer lease is gone (fencing): no store write ever again, requests in flight
   * are aborted, and reads fail too (another writer may be changing the chunks).
   */
  fence(reason: string): void {
    if (!this.fencedError) {
      this.fencedError = new StorageError('fenced', reason);
      this.writeGate.abort(reason);
      log.error('volume fenced: no more writes', { lun: this.layout.name, reason });
    }
  }

  /**
   * The lease could not be renewed for a while: store writes stop (and those in flight are
   * aborted) until `resume`. Writes still land in the cache; flushes fail retryably.
   */
  suspend(reason: string): void {
    if (this.fencedError || this.suspendedError) return;
    this.suspendedError = new StorageError('unavailable', `writes suspended: ${reason}`);
    this.writeGate.abort(reason);
  }

  resume(): void {
    if (this.fencedError || !this.suspendedError) return;
    this.suspendedError = undefined;
    this.writeGate = new AbortController();
  }

  /** Options for a store mutation, after checking it may happen at all. */
  private mutation(lane: Lane): { lane: Lane; signal: AbortSignal } {
    if (this.fencedError) throw this.fencedError;
    if (this.suspendedError) throw this.suspendedError;
    return { lane, signal: this.writeGate.signal };
  }

  /** The Volume contract: ranges are whole 512-byte sectors inside the volume. */
  private checkRange(offset: number, length: number): void {
    if (offset % SECTOR !== 0 || length % SECTOR !== 0 || offset < 0 || length < 0 || offset + length > this.info.sizeBytes) {
      throw new StorageError('internal', `range ${offset}+${length} is not sector-aligned inside ${this.info.sizeBytes} bytes`);
    }
  }

  private checkWritable(): void {
    if (this.fencedError) throw this.fencedError;
    if (this.closed) throw new StorageError('unavailable', `${this.layout.name} is closing`);
    if (this.options.readOnly) throw new StorageError('invalid', `${this.layout.name} is read-only`);
  }

  // ---------------------------------------------------------------- reads

  async read(offset: number, length: number): Promise<Buffer> {
    // Never released: a view stays a reader until a write moves the chunk to a copy.
    return (await this.readView(offset, length)).data;
  }

  async readView(offset: number, length: number): Promise<ReadView> {
    this.checkRange(offset, length);
    if (this.fencedError) throw this.fencedError;
    const release = await this.locks.acquire(offset, length, 'shared');
    try {
      const cs = this.info.chunkSize;
      let view: ReadView;
      if (length > 0 && Math.floor(offset / cs) === Math.floor((offset + length - 1) / cs)) {
        view = await this.readWithinChunk({ index: Math.floor(offset / cs), inner: offset % cs, length, pos: 0 });
      } else {
        const out = Buffer.allocUnsafe(length);
        await this.readLocked(offset, out);
        view = { data: out, release: NO_RELEASE };
      }
      this.noteSequential(offset, length);
      this.stats.bytesRead += length;
      return view;
    } finally {
      release();
    }
  }

  /**
   * A read inside one chunk, without a copy where it can: a view of the cached chunk (the
   * entry counts it as a reader, so a write meanwhile copies the chunk first) or of the chunk
   * just fetched.
   */
  private async readWithinChunk(p: Piece): Promise<ReadView> {
    const e = this.cache.get(p.index);
    if (e?.covers(p.inner, p.length)) {
      const release = e.lend();
      this.cache.touch(e);
      this.stats.cacheHits++;
      return { data: e.buf.subarray(p.inner, p.inner + p.length), release };
    }
    const cs = this.info.chunkSize;
    if (!e && !this.alloc.isHole(p.index) && p.length >= cs / 2) {
      this.stats.cacheMisses++;
      const got = await this.fetchWhole(p.index, 'foreground');
      if (!got) return { data: Buffer.alloc(p.length), release: NO_RELEASE };
      if (got.current && got.body.length === cs) this.cache.insertClean(p.index, got.body);
      // Whoever inserted it (this reader or another that shared the GET), a body that is the
      // cache's buffer now is lent like any cached chunk; one that is not stays private.
      const cached = this.cache.get(p.index);
      const release = cached?.buf === got.body ? cached.lend() : NO_RELEASE;
      return { data: got.body.subarray(p.inner, p.inner + p.length), release };
    }
    const out = Buffer.allocUnsafe(p.length);
    const t = this.readPiece(p, out);
    if (t) await t;
    return { data: out, release: NO_RELEASE };
  }

  private async readLocked(offset: number, out: Buffer): Promise<void> {
    const tasks: Promise<void>[] = [];
    for (const p of pieces(offset, out.length, this.info.chunkSize)) {
      const t = this.readPiece(p, out);
      if (t) tasks.push(t);
    }
    if (tasks.length > 0) await Promise.all(tasks);
  }

  /** Serves one chunk's part of a read; returns a promise only when it must wait. */
  private readPiece(p: Piece, out: Buffer): Promise<void> | undefined {
    const e = this.cache.get(p.index);
    if (e?.covers(p.inner, p.length)) {
      e.buf.copy(out, p.pos, p.inner, p.inner + p.length);
      this.cache.touch(e);
      this.stats.cacheHits++;
      return undefined;
    }
    if (!e && this.alloc.isHole(p.index)) {
      out.fill(0, p.pos, p.pos + p.length);
      this.stats.holeReads++;
      return undefined;
    }
    return this.readPieceSlow(p, out);
  }

  private async readPieceSlow(p: Piece, out: Buffer): Promise<void> {
    const pending = this.wholeFetches.get(p.index);
    if (pending) {
      await pending.catch(() => undefined);
      const again = this.readPiece(p, out);
      if (again) await again;
      return;
    }
    const e = this.cache.get(p.index);
    if (e) {
      // A dirty chunk with sectors nobody wrote: bring in the stored base once, then serve.
      e.pins++;
      try {
        await this.fillBase(e, 'foreground');
        e.buf.copy(out, p.pos, p.inner, p.inner + p.length);
      } finally {
        e.pins--;
      }
      return;
    }
    await this.fetchPiece(p, out);
  }

  /** Reads straight from the store: a ranged GET widened to checksum segments. */
  private async fetchPiece(p: Piece, out: Buffer): Promise<void> {
    this.stats.cacheMisses++;
    const cs = this.info.chunkSize;
    const whole = p.length >= cs / 2;
    const range = whole ? { offset: 0, length: cs } : segmentAligned(p.inner, p.length, cs);
    const got = whole ? await this.fetchWhole(p.index, 'foreground') : await this.fetchChunk(p.index, range, 'foreground');
    if (!got) {
      out.fill(0, p.pos, p.pos + p.length);
      return;
    }
    got.body.copy(out, p.pos, p.inner - range.offset, p.inner - range.offset + p.length);
    if (whole && got.current && got.body.length === cs) this.cache.insertClean(p.index, got.body);
  }

  /**
   * GETs (part of) a chunk and verifies its checksums. `current` says no store mutation of the
   * chunk happened meanwhile, so the bytes may be cached or the absence recorded.
   */
  private async fetchChunk(index: number, range: ByteRange, lane: Lane): Promise<{ body: Buffer; current: boolean } | null> {
    const key = this.layout.chunkKey(index);
    const seq = this.mutated.get(index);
    this.fetchesInFlight++;
    try {
      const got = await this.store.get(key, range.offset === 0 && range.length === this.info.chunkSize ? undefined : range, { lane });
      const current = this.mutated.get(index) === seq;
      if (!got) {
        if (current) this.alloc.set(index, false);
        return null;
      }
      if (got.meta.size !== this.info.chunkSize) {
        this.stats.checksumErrors++;
        throw new StorageError('data', `${key}: object is ${got.meta.size} bytes, expected ${this.info.chunkSize}`);
      }
      try {
        verifySegments(key, got.body, range.offset, got.meta.metadata[CRC_META_KEY]);
      } catch (e) {
        if (isStorageError(e, 'data')) this.stats.checksumErrors++;
        throw e;
      }
      if (current) this.alloc.set(index, true);
      return { body: got.body, current };
    } finally {
      this.fetchesInFlight--;
      if (this.fetchesInFlight === 0) this.mutated.clear();
    }
  }

  /** Merges the stored chunk into the sectors of `e` that no write has filled. */
  private fillBase(e: ChunkEntry, lane: Lane): Promise<void> {
    if (e.fullyValid) return Promise.resolve();
    if (!e.filling) {
      const filling = (async () => {
        let base: Buffer | null = null;
        if (this.alloc.mayExist(e.index)) {
          base = (await this.fetchChunk(e.index, { offset: 0, length: this.info.chunkSize }, lane))?.body ?? null;
          this.stats.baseFetches++;
        }
        e.mergeBase(base);
      })();
      // Assigned after the body started: it may already have finished synchronously.
      e.filling = filling;
      filling
        .finally(() => {
          if (e.filling === filling) e.filling = undefined;
          this.cache.noteIdle(e);
        })
        .catch(() => undefined);
    }
    return e.filling;
  }

  private noteSequential(offset: number, length: number): void {
    if (offset === this.sequentialEnd) this.sequentialStreak++;
    else this.sequentialStreak = 0;
    this.sequentialEnd = offset + length;
    if (this.sequentialStreak >= 2 && this.options.readAheadChunks > 0) {
      const next = Math.floor((offset + length) / this.info.chunkSize);
      this.prefetchChunks(next, Math.min(this.chunkCount, next + this.options.readAheadChunks));
    }
  }

  private prefetchChunks(from: number, to: number): void {
    for (let i = from; i < to; i++) {
      if (this.cache.get(i) || this.wholeFetches.has(i) || !this.alloc.mayExist(i)) continue;
      // Read-ahead evicts clean chunks (LRU), never waits for dirty ones to flush.
      if (this.cache.dirtyEntries >= this.cache.capacity - 1) return;
      this.fetchWhole(i, 'background')
        .then((got) => {
          if (got?.current && got.body.length === this.info.chunkSize) this.cache.insertClean(i, got.body);
          this.stats.readAheadChunks++;
        })
        .catch(() => undefined);
    }
  }

  /**
   * One GET of a whole chunk, shared by everyone who wants it meanwhile (a reader that arrives
   * while read-ahead fetches its chunk waits for that request instead of sending another).
   */
  private fetchWhole(index: number, lane: Lane): Promise<{ body: Buffer; current: boolean } | null> {
    let f = this.wholeFetches.get(index);
    if (!f) {
      const started = this.fetchChunk(index, { offset: 0, length: this.info.chunkSize }, lane);
      f = started.finally(() => {
        if (this.wholeFetches.get(index) === f) this.wholeFetches.delete(index);
      });
      this.wholeFetches.set(index, f);
    }
    return f;
  }

  async prefetch(range: ByteRange): Promise<void> {
    const first = Math.floor(range.offset / this.info.chunkSize);
    const last = Math.ceil((range.offset + range.length) / this.info.chunkSize);
    this.prefetchChunks(first, Math.min(last, first + this.cache.capacity / 2));
  }

  // ---------------------------------------------------------------- writes

  async write(offset: number, data: Buffer | Parts, opts: WriteOptions = {}): Promise<void> {
    const length = partsLength(data);
    this.checkRange(offset, length);
    this.checkWritable();
    const release = await this.locks.acquire(offset, length, 'exclusive');
    try {
      await this.writeLocked(offset, data, opts);
    } finally {
      release();
    }
  }

  private async writeLocked(offset: number, data: Buffer | Parts, opts: WriteOptions): Promise<void> {
    this.checkWritable();
    const length = partsLength(data);
    const touched: Array<[ChunkEntry, number]> = [];
    for (const p of pieces(offset, length, this.info.chunkSize)) {
      const e = await this.cache.forWrite(p.index, () => this.flushOldest(), this.options.spaceTimeoutMs);
      try {
        const wasDirty = e.dirty;
        e.prepareWrite();
        copyFrom(data, p.pos, e.buf, p.inner, p.length);
        e.markValid(p.inner, p.length);
        e.gen++;
        e.lastWrite = Date.now();
        this.cache.noteDirtied(wasDirty, e);
        this.cache.touch(e);
        touched.push([e, e.gen]);
      } finally {
        e.pins--;
      }
    }
    this.stats.bytesWritten += length;
    if (opts.fua || this.mode === 'write-through') {
      await Promise.all(touched.map(([e, gen]) => this.flushEntry(e, gen, 'foreground')));
    }
  }

  async update(offset: number, length: number, fn: (current: Buffer) => Buffer | null, opts: WriteOptions = {}): Promise<void> {
    this.checkRange(offset, length);
    this.checkWritable();
    const release = await this.locks.acquire(offset, length, 'exclusive');
    try {
      const current = Buffer.allocUnsafe(length);
      await this.readLocked(offset, current);
      const next = fn(current);
      if (next) {
        if (next.length !== length) throw new StorageError('internal', `update returned ${next.length} bytes for ${length}`);
        await this.writeLocked(offset, next, opts);
      }
    } finally {
      release();
    }
  }

  async writeSame(range: ByteRange, block: Buffer, opts: WriteOptions & { readonly unmap?: boolean } = {}): Promise<void> {
    this.checkRange(range.offset, range.length);
    this.checkWritable();
    // SBC-4 §5.49 Table 237: with UNMAP the LBAs are deallocated whatever the block holds;
    // a zero block deallocates too. Either way they read back as zeros (LBPRZ=1).
    if (opts.unmap || block.every((b) => b === 0)) {
      await this.discard([range], opts);
      return;
    }
    const cs = this.info.chunkSize;
    const pattern = Buffer.allocUnsafe(cs);
    for (let o = 0; o < cs; o += block.length) block.copy(pattern, o);
    const release = await this.locks.acquire(range.offset, range.length, 'exclusive');
    try {
      for (const p of pieces(range.offset, range.length, cs)) {
        await this.writeLocked(range.offset + p.pos, pattern.subarray(0, p.length), opts);
      }
    } finally {
      release();
    }
  }

  async discard(ranges: readonly ByteRange[], opts: WriteOptions = {}): Promise<void> {
    for (const r of ranges) this.checkRange(r.offset, r.length);
    this.checkWritable();
    for (const r of ranges) {
      if (r.length === 0) continue;
      const release = await this.locks.acquire(r.offset, r.length, 'exclusive');
      try {
        await this.discardLocked(r, opts);
      } finally {
        release();
      }
    }
  }

  private async discardLocked(r: ByteRange, opts: WriteOptions): Promise<void> {
    const cs = this.info.chunkSize;
    const whole: number[] = [];
    const partial: Piece[] = [];
    for (const p of pieces(r.offset, r.length, cs)) {
      if (p.inner === 0 && p.length === cs) whole.push(p.index);
      else partial.push(p);
    }
    for (const p of partial) {
      await this.writeLocked(r.offset + p.pos, this.zeroChunk.subarray(0, p.length), opts);
    }
    const toDelete: number[] = [];
    for (const i of whole) {
      const e = this.cache.get(i);
      if (e) {
        // Let an upload in progress land first, then drop the entry: the DELETE below follows it.
        while (e.flushing || e.filling) await (e.flushing ?? e.filling)?.catch(() => undefined);
        this.cache.remove(e);
      }
      if (this.alloc.mayExist(i)) toDelete.push(i);
    }
    for (let k = 0; k < toDelete.length; k += 1000) {
      const batch = toDelete.slice(k, k + 1000);
      await this.chunkOps(batch, () =>
        this.store.deleteMany(
          batch.map((i) => this.layout.chunkKey(i)),
          { lane: 'foreground' },
        ),
      );
      for (const i of batch) this.alloc.set(i, false);
      this.stats.chunksDeleted += batch.length;
    }
    this.stats.bytesDiscarded += r.length;
  }

  // ---------------------------------------------------------------- flushing

  async flush(range?: ByteRange): Promise<void> {
    if (this.fencedError) throw this.fencedError;
    if (this.suspendedError && this.cache.dirtyEntries > 0) throw this.suspendedError;
    const cs = this.info.chunkSize;
    const first = range ? Math.floor(range.offset / cs) : 0;
    const last = range ? Math.ceil((range.offset + range.length) / cs) : this.chunkCount;
    const work: Promise<void>[] = [];
    for (const e of this.cache.values()) {
      if (e.dirty && e.index >= first && e.index < last) work.push(this.flushEntry(e, e.gen, 'foreground'));
    }
    await Promise.all(work);
  }

  /** Returns once generation `minGen` of the entry (or a later one) is in the store. */
  private async flushEntry(e: ChunkEntry, minGen: number, lane: Lane): Promise<void> {
    for (;;) {
      if (e.flushedGen >= minGen || e.removed) return;
      if (this.fencedError) throw this.fencedError;
      if (e.flushing) {
        // Someone else's upload; it may carry an older generation, so look again after it.
        await e.flushing;
        continue;
      }
      e.flushing = this.upload(e, lane);
      try {
        await e.flushing;
      } finally {
        e.flushing = undefined;
        this.cache.noteIdle(e);
      }
    }
  }

  private async upload(e: ChunkEntry, lane: Lane): Promise<void> {
    const started = Date.now();
    e.pins++;
    try {
      await this.fillBase(e, lane);
      const gen = e.gen;
      const zero = e.buf.equals(this.zeroChunk);
      if (zero) {
        if (this.alloc.mayExist(e.index)) {
          const opts = this.mutation(lane);
          await this.chunkOps([e.index], () => this.store.delete(this.layout.chunkKey(e.index), opts));
          this.stats.chunksDeleted++;
        }
        this.alloc.set(e.index, false);
      } else {
        // The PUT sends e.buf itself; a write arriving meanwhile copies it first (prepareWrite).
        const body = e.buf;
        e.uploading = body;
        const metadata = { [CRC_META_KEY]: segmentCrcs(body) };
        const opts = this.mutation(lane);
        try {
          await this.chunkOps([e.index], () => this.store.put(this.layout.chunkKey(e.index), body, { metadata, ...opts }));
        } finally {
          if (e.uploading === body) e.uploading = undefined;
        }
        this.alloc.set(e.index, true);
        this.stats.chunksUploaded++;
        this.stats.bytesUploaded += body.length;
      }
      if (gen > e.flushedGen) e.flushedGen = gen;
      e.failures = 0;
      this.cache.noteCleaned(e);
      this.stats.flushLatency.observe((Date.now() - started) / 1000);
    } catch (err) {
      e.failures++;
      e.failedAt = Date.now();
      this.stats.flushErrors++;
      throw err;
    } finally {
      e.pins--;
    }
  }

  /** Runs a store mutation after every earlier one of the same chunks (PUT/DELETE order). */
  private async chunkOps<T>(indexes: readonly number[], fn: () => Promise<T>): Promise<T> {
    const prior = indexes.map((i) => this.ops.get(i)).filter((p): p is Promise<unknown> => p !== undefined);
    const run = (prior.length > 0 ? Promise.allSettled(prior) : Promise.resolve()).then(fn);
    for (const i of indexes) this.ops.set(i, run);
    try {
      return await run;
    } finally {
      for (const i of indexes) {
        this.mutated.set(i, ++this.mutationSeq);
        if (this.ops.get(i) === run) this.ops.delete(i);
      }
    }
  }

  /** The background flusher: uploads chunks that settled, and more when the cache fills up. */
  private flushTick(): void {
    if (this.fencedError || this.suspendedError || this.cache.dirtyEntries === 0) return;
    const now = Date.now();
    const pressure = this.cache.dirtyEntries >= this.cache.capacity / 2;
    const maxParallel = 16;
    for (const e of this.cache.values()) {
      if (this.backgroundFlushes >= maxParallel) break;
      if (!e.dirty || e.flushing || e.filling) continue;
      if (!pressure && now - e.lastWrite < this.options.flushDelayMs) continue;
      if (e.failures > 0 && now - e.failedAt < Math.min(5000, 100 * 2 ** e.failures)) continue;
      this.startBackgroundFlush(e);
    }
  }

  private startBackgroundFlush(e: ChunkEntry): void {
    this.backgroundFlushes++;
    this.flushEntry(e, e.gen, 'flush')
      .catch((err) => {
        if (e.failures <= 1 || e.failures % 20 === 0) {
          log.warn('background flush failed; will retry', { lun: this.layout.name, chunk: e.index, error: (err as Error).message });
        }
      })
      .finally(() => {
        this.backgroundFlushes--;
      });
  }

  /** Called by a writer that found the cache full: start flushing the oldest dirty chunks now. */
  private flushOldest(): void {
    this.stats.backPressureWaits++;
    let started = 0;
    for (const e of this.cache.values()) {
      if (started >= 8) break;
      if (e.dirty && !e.flushing && !e.filling) {
        this.startBackgroundFlush(e);
        started++;
      }
    }
  }

  // ---------------------------------------------------------------- provisioning, records

  async allocation(range: ByteRange): Promise<AllocationExtent[]> {
    await this.alloc.load(this.store, this.layout);
    const cs = this.info.chunkSize;
    const out: AllocationExtent[] = [];
    for (const p of pieces(range.offset, range.length, cs)) {
      const e = this.cache.get(p.index);
      // A dirty chunk will be stored unless it turns out all zeros.
      const mapped = e?.dirty ? !(e.fullyValid && e.buf.equals(this.zeroChunk)) : this.alloc.isPresent(p.index);
      const last = out[out.length - 1];
      if (last && last.mapped === mapped) out[out.length - 1] = { offset: last.offset, length: last.length + p.length, mapped };
      else out.push({ offset: range.offset + p.pos, length: p.length, mapped });
    }
    return out;
  }

  /**
   * One defrag step (SBC has no such command; this is `s3tgt defrag`): under an exclusive
   * lock on the chunk, read its object whole and verify it. An all-zero chunk is deleted
   * (unless dryRun); a chunk with dirty or in-flight cached data is left to its flush.
   */
  async defragChunk(index: number, dryRun: boolean): Promise<'mapped' | 'zero' | 'corrupt' | 'busy' | 'hole'> {
    const cs = this.info.chunkSize;
    const release = await this.locks.acquire(index * cs, cs, 'exclusive');
    try {
      const e = this.cache.get(index);
      if (e && (e.dirty || e.busy)) return 'busy';
      let got: { body: Buffer } | null;
      try {
        got = await this.fetchChunk(index, { offset: 0, length: cs }, 'background');
      } catch (err) {
        if (isStorageError(err, 'data')) return 'corrupt';
        throw err;
      }
      if (!got) return 'hole';
      if (!got.body.equals(this.zeroChunk)) return 'mapped';
      if (!dryRun) {
        const opts = this.mutation('background');
        await this.chunkOps([index], () => this.store.delete(this.layout.chunkKey(index), opts));
        this.alloc.set(index, false);
        if (e) this.cache.remove(e);
        this.stats.chunksDeleted++;
      }
      return 'zero';
    } finally {
      release();
    }
  }

  /** Waits for the allocation map (defrag, statistics). */
  async allocationMap(): Promise<AllocationMap> {
    await this.alloc.load(this.store, this.layout);
    return this.alloc;
  }

  async setCacheMode(mode: CacheMode): Promise<void> {
    if (mode === 'write-through' && this.mode === 'write-back') await this.flush();
    this.mode = mode;
  }

  async loadRecord(name: string): Promise<Buffer | null> {
    return (await this.store.get(this.layout.recordKey(name)))?.body ?? null;
  }

  async saveRecord(name: string, data: Buffer): Promise<void> {
    await this.store.put(this.layout.recordKey(name), data, this.mutation('foreground'));
  }

  /** Drops clean cached chunks (tests: force reads to go to the store). */
  dropCleanCache(): void {
    this.cache.dropClean();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.flusherTimer) clearInterval(this.flusherTimer);
    this.flusherTimer = undefined;
    try {
      if (!this.fencedError) await this.flush();
    } finally {
      this.closed = true;
    }
  }
}
