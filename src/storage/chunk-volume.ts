import { type Clock, systemClock } from '../util/clock';
import { invariant } from '../util/invariant';
import { log } from '../util/log';
import { type Parts, partsLength, sliceParts } from '../util/parts';
import { type ChunkEntry, SECTOR } from './chunk-entry';
import { ChunkMap } from './chunk-map';
import { ChunkReader, NO_RELEASE, pieces } from './chunk-reader';
import { isStorageError, StorageError } from './errors';
import type { LunJournal } from './journal/lun-journal';
import type { LunLayout } from './layout';
import type { ObjectStore } from './object-store';
import { RangeLock } from './range-lock';
import type { AllocationExtent, ByteRange, CacheMode, CopyRemainder, ReadView, Volume, VolumeInfo, WriteOptions } from './volume';
import { segmentSizeOf } from './volume-meta';
import { VolumeResizer } from './volume-resize';
import { VolumeStats } from './volume-stats';
import { WriteGate } from './write-gate';
import { Writeback } from './writeback';

export interface ChunkVolumeOptions {
  /** Cache size in bytes (dirty plus clean chunks). */
  readonly cacheBytes: number;
  readonly cacheMode: CacheMode;
  readonly readOnly: boolean;
  /** A dirty chunk is uploaded once it has not been written for this long. */
  readonly flushDelayMs: number;
  /** Chunks fetched ahead of a sequential reader. */
  readonly readAheadChunks: number;
  /** How long a writer waits for cache space before failing retryably (below initiator timeouts). */
  readonly spaceTimeoutMs: number;
  /** How long a SYNCHRONIZE CACHE's drain yields to reads (Writeback.DRAIN_READS_FIRST_MS if unset). */
  readonly drainReadsFirstMs?: number;
  /**
   * Every miss reads its whole chunk: the chunks are encoded (compressed, or sealed under one
   * GCM tag), so a ranged GET would fetch the whole object anyway; the cache keeps all of it.
   */
  readonly wholeChunkReads?: boolean;
  /**
   * Chunk objects are sealed to this LUN (encrypted: the LUN's UUID and the chunk index are in
   * the GCM tag, chunk-codec.ts): another LUN's object copied here is not this LUN's chunk, so
   * a clone's hydration passes the bytes through instead of copying objects.
   */
  readonly sealedChunks?: boolean;
}

export const DEFAULT_VOLUME_OPTIONS: ChunkVolumeOptions = {
  cacheBytes: 256 * 1024 * 1024,
  cacheMode: 'write-back',
  readOnly: false,
  flushDelayMs: 200,
  readAheadChunks: 8,
  spaceTimeoutMs: 20_000,
};

/** Where the volume's time and write permission come from (a lease's gate when served). */
export interface VolumeEnv {
  readonly clock?: Clock;
  readonly gate?: WriteGate;
  /**
   * The bucket whose keys this volume's chunks are (the store's description): volumes of one
   * domain copy chunks to each other server-side. Unset (a snapshot LUN, whose chunk keys do
   * not hold its data; tests): nothing is copied server-side to or from it.
   */
  readonly copyDomain?: string;
  /**
   * A cluster: every chunk PUT is conditional on the ETag last seen (fencing that does not rest
   * on timing alone: a deposed server's late PUT gets 412, and a 412 that is not our own PUT
   * fences the gate), no chunk is deleted (a hole marker is stored instead: S3 has no
   * conditional DELETE), and nothing is copied into the LUN server-side (CopyObject takes no
   * condition on its destination). Off by default. See ChunkMap.
   */
  readonly conditionalWrites?: boolean;
}

const noop = (): void => undefined;

/**
 * The final flush's attempts and how long each waits for a lapsed lease to be renewed: the
 * renewal loop tries every `lease.renewInterval` (3 s by default), each renewal bounded by
 * the retry deadline.
 */
const CLOSE_FLUSH_ATTEMPTS = 3;
const CLOSE_REOPEN_WAIT_MS = 10_000;

export type ScrubResult = 'mapped' | 'zero' | 'corrupt' | 'busy' | 'hole';

/**
 * A LUN cut into 1 MiB chunks, each one object of an ObjectStore: the Volume the SCSI layer
 * uses. It composes byte-range locks (overlapping commands in submission order, the rest in
 * parallel), the Writeback (cache, flusher, durability) and the ChunkMap (objects, their
 * states and order), and adds reads without copies, read-ahead, and the composite writes:
 * COMPARE AND WRITE, WRITE SAME, discard. Every store mutation passes the gate.
 */
export class ChunkVolume implements Volume {
  readonly stats = new VolumeStats();
  readonly gate: WriteGate;
  private readonly locks = new RangeLock();
  private readonly map: ChunkMap;
  private readonly wb: Writeback;
  private readonly gated: ObjectStore;
  private readonly zero: Buffer;
  private readonly reader: ChunkReader;
  private readonly resizer: VolumeResizer;
  private mode: CacheMode;
  private closed = false;
  private readonly copyDomain: string | undefined;
  /** Where acknowledged writes are durable before S3 has them (after replay; docs/journal.md). */
  private journal: LunJournal | undefined;
  /** In a cluster (VolumeEnv.conditionalWrites). */
  private readonly conditionalWrites: boolean;

  constructor(
    private readonly store: ObjectStore,
    readonly layout: LunLayout,
    info: VolumeInfo,
    private readonly options: ChunkVolumeOptions = DEFAULT_VOLUME_OPTIONS,
    env: VolumeEnv = {},
  ) {
    const clock = env.clock ?? systemClock;
    this.gate = env.gate ?? WriteGate.unleased(clock, layout.name);
    this.gated = this.gate.bind(store);
    this.copyDomain = env.copyDomain;
    this.conditionalWrites = env.conditionalWrites ?? false;
    this.mode = options.cacheMode;
    this.zero = Buffer.alloc(info.chunkSize);
    const inherited = info.parent ? Math.ceil(info.parent.sizeBytes / info.chunkSize) : 0;
    this.map = new ChunkMap(
      store,
      layout,
      Math.ceil(info.sizeBytes / info.chunkSize),
      info.chunkSize,
      this.gate,
      this.stats,
      inherited,
      env.conditionalWrites ?? false,
      segmentSizeOf(info),
    );
    const capacity = Math.max(4, Math.floor(options.cacheBytes / info.chunkSize));
    this.wb = new Writeback(this.map, info.chunkSize, { capacity, ...options }, clock, this.gate, this.stats);
    this.map.onWholeFetched = (i, f, stream) => void this.wb.adopt(i, f, stream);
    this.map.bodyBuffer = (size, stream) => (size === info.chunkSize ? this.wb.takeBuffer(stream) : undefined);
    this.reader = new ChunkReader(this.map, this.wb, this.stats, info.chunkSize, options.readAheadChunks, options.wholeChunkReads ?? false);
    this.resizer = new VolumeResizer(store, this.gated, layout, this.map, info);
    // Opening never waits for the listing (ESXi's login timeout is 5 s).
    this.map.load().catch(noop);
  }

  get info(): VolumeInfo {
    return this.resizer.current;
  }

  /** Bytes of the chunks the store holds or may hold (their states; a clone's inherited ones are its parent's). */
  get allocatedBytes(): number {
    const c = this.map.census();
    return (c.stored + c['may-exist']) * this.info.chunkSize;
  }
  get readOnly(): boolean {
    return this.options.readOnly;
  }
  get cacheMode(): CacheMode {
    return this.mode;
  }
  /**
   * From now on every write and discard is journaled before it is acknowledged, and the
   * journal is the durability point instead of S3: write-through acknowledges at the journal's
   * fsync, write-back's FUA and SYNCHRONIZE CACHE wait for it. Attached after replay.
   */
  attachJournal(j: LunJournal): void {
    invariant(this.journal === undefined, () => `${this.layout.name}: a second journal`);
    this.journal = j;
    this.wb.attachJournal(j);
  }
  get dirtyBytes(): number {
    return this.wb.dirtyEntries * this.info.chunkSize;
  }
  get cachedBytes(): number {
    return this.wb.size * this.info.chunkSize;
  }

  /** The Volume contract: ranges are whole 512-byte sectors inside the volume. */
  private checkRange(offset: number, length: number): void {
    if (offset % SECTOR !== 0 || length % SECTOR !== 0 || offset < 0 || length < 0 || offset + length > this.info.sizeBytes) {
      throw new StorageError('internal', `range ${offset}+${length} is not sector-aligned inside ${this.info.sizeBytes} bytes`);
    }
  }

  /**
   * Writes land in the cache while the gate is suspended (flushes then fail retryably), never
   * once fenced. In a cluster a journal LUN acknowledges a write as durable: while its lease
   * is not known to be held (suspended: no renewal for TTL/2) it may have been taken over
   * already, and what it acknowledged would be lost, so it refuses (STORE_ERR_SUSPENDED, which
   * a cluster LU answers with 02/04/0B: scsi/target.ts) until a renewal lands (docs/ha.md,
   * "Journal replication"). Alone, it rides S3 outages out.
   */
  private checkWritable(): void {
    if (this.gate.state === 'fenced') throw this.gate.reason;
    if (this.conditionalWrites && this.journal) this.gate.check('journal write');
    if (this.closed) throw new StorageError('unavailable', `${this.layout.name} is closing`, { code: 'STORE_ERR_CLOSED' });
    if (this.options.readOnly) throw new StorageError('invalid', `${this.layout.name} is read-only`);
  }

  /** Another writer may be changing the chunks of a fenced volume: reads fail too. */
  private checkReadable(): void {
    if (this.gate.state === 'fenced') throw this.gate.reason;
  }

  // ---------------------------------------------------------------- reads

  async read(offset: number, length: number): Promise<Buffer> {
    // Never released: a view stays a reader until a write moves the chunk to a copy.
    return (await this.readView(offset, length)).data;
  }

  async readView(offset: number, length: number): Promise<ReadView> {
    this.checkRange(offset, length);
    this.checkReadable();
    return this.locks.with(offset, length, 'shared', async () => {
      const cs = this.info.chunkSize;
      // In issue order: a queue of sequential reads completes in any order.
      const sequential = this.reader.noteSequential(offset, length);
      let view: ReadView;
      if (length > 0 && Math.floor(offset / cs) === Math.floor((offset + length - 1) / cs)) {
        view = await this.reader.withinChunk({ index: Math.floor(offset / cs), inner: offset % cs, length, pos: 0 }, sequential);
      } else {
        const out = Buffer.allocUnsafe(length);
        await this.reader.into(offset, out, sequential);
        view = { data: out, release: NO_RELEASE };
      }
      this.stats.bytesRead += length;
      return view;
    });
  }

  async prefetch(range: ByteRange): Promise<void> {
    const first = Math.floor(range.offset / this.info.chunkSize);
    const last = Math.ceil((range.offset + range.length) / this.info.chunkSize);
    this.reader.prefetch(first, Math.min(last, first + this.wb.capacity / 2));
  }

  // ---------------------------------------------------------------- writes

  async write(offset: number, data: Buffer | Parts, opts: WriteOptions = {}): Promise<void> {
    const length = partsLength(data);
    this.checkRange(offset, length);
    this.checkWritable();
    await this.locks.with(offset, length, 'exclusive', () => this.writeLocked(offset, data, opts));
  }

  private async writeLocked(offset: number, data: Buffer | Parts, opts: WriteOptions): Promise<void> {
    this.checkWritable();
    const length = partsLength(data);
    const waitDurable = opts.fua || this.mode === 'write-through';
    if (this.journal) {
      const j = this.journal;
      const durable = await Promise.all(
        [...pieces(offset, length, this.info.chunkSize)].map(async (p) => {
          const e = await this.wb.entryForWrite(p.index);
          try {
            // Numbered and cached in one step: see Journal.place.
            const placed = await j.placeWrite(p.index, p.inner, sliceParts(data, p.pos, p.length), p.length, (seq) => {
              this.wb.write(e, data, p.pos, p.inner, p.length, seq);
            });
            return placed.durable;
          } finally {
            this.wb.unpin(e);
          }
        }),
      );
      this.stats.bytesWritten += length;
      if (waitDurable) await Promise.all(durable);
      return;
    }
    const touched: Array<[ChunkEntry, number]> = [];
    for (const p of pieces(offset, length, this.info.chunkSize)) {
      const e = await this.wb.entryForWrite(p.index);
      try {
        touched.push([e, this.wb.write(e, data, p.pos, p.inner, p.length)]);
      } finally {
        this.wb.unpin(e);
      }
    }
    this.stats.bytesWritten += length;
    if (waitDurable) {
      await Promise.all(touched.map(([e, gen]) => this.wb.durable(e, gen, 'foreground')));
    }
  }

  async update(offset: number, length: number, fn: (current: Buffer) => Buffer | null, opts: WriteOptions = {}): Promise<void> {
    this.checkRange(offset, length);
    this.checkWritable();
    await this.locks.with(offset, length, 'exclusive', async () => {
      const current = Buffer.allocUnsafe(length);
      await this.reader.into(offset, current);
      const next = fn(current);
      if (!next) return;
      if (next.length !== length) throw new StorageError('internal', `update returned ${next.length} bytes for ${length}`);
      await this.writeLocked(offset, next, opts);
    });
  }

  async writeSame(range: ByteRange, block: Buffer, opts: WriteOptions & { readonly unmap?: boolean } = {}): Promise<void> {
    this.checkRange(range.offset, range.length);
    this.checkWritable();
    // SBC-4 §5.49 Table 237: with UNMAP the LBAs are deallocated whatever the block holds;
    // a zero block deallocates too. Either way they read back as zeros (LBPRZ=1).
    if (opts.unmap || block.every((b) => b === 0)) return this.discard([range], opts);
    const cs = this.info.chunkSize;
    const pattern = Buffer.allocUnsafe(cs);
    for (let o = 0; o < cs; o += block.length) block.copy(pattern, o);
    await this.locks.with(range.offset, range.length, 'exclusive', async () => {
      for (const p of pieces(range.offset, range.length, cs)) {
        await this.writeLocked(range.offset + p.pos, pattern.subarray(0, p.length), opts);
      }
    });
  }

  async discard(ranges: readonly ByteRange[], opts: WriteOptions = {}): Promise<void> {
    for (const r of ranges) this.checkRange(r.offset, r.length);
    this.checkWritable();
    for (const r of ranges) {
      if (r.length > 0) await this.locks.with(r.offset, r.length, 'exclusive', () => this.discardLocked(r, opts));
    }
  }

  /** Partial chunks are written with zeros; whole chunks are discarded (deleted), 1000 at a time. */
  private async discardLocked(r: ByteRange, opts: WriteOptions): Promise<void> {
    this.checkWritable();
    const cs = this.info.chunkSize;
    let whole: number[] = [];
    const discardWhole = async (): Promise<void> => {
      // Journaled first: a replay must not bring back the writes the DELETEs supersede.
      const j = this.journal;
      const seqs = j ? new Map(await Promise.all(whole.map(async (i) => [i, await j.discard(i, cs)] as const))) : undefined;
      await this.wb.discard(whole, 'foreground', seqs);
      whole = [];
    };
    for (const p of pieces(r.offset, r.length, cs)) {
      if (p.inner !== 0 || p.length !== cs) await this.writeLocked(r.offset + p.pos, this.zero.subarray(0, p.length), opts);
      else whole.push(p.index);
      if (whole.length === 1000) await discardWhole();
    }
    if (whole.length > 0) await discardWhole();
    this.stats.bytesDiscarded += r.length;
  }

  /**
   * Server-side copy (Volume.copyFrom): every whole chunk of the range whose source is a whole
   * chunk of a volume in the same bucket becomes one CopyObject, the rest is returned to the
   * caller. The source's chunks are flushed to the store first (every write acknowledged
   * before the copy is in what S3 copies); the destination's chunks are replaced under an
   * exclusive range lock, through the same path as a discard (cached data superseded, the
   * newest snapshot preserved by the PreservingStore before the copy overwrites). A journal
   * destination copies through the target: a replay of its older records would undo a copy
   * the journal does not know. So does a destination with conditional chunk writes: a
   * CopyObject cannot be conditional on the object it replaces.
   */
  async copyFrom(source: Volume, sourceOffset: number, offset: number, length: number): Promise<readonly CopyRemainder[]> {
    this.checkRange(offset, length);
    this.checkWritable();
    const cs = this.info.chunkSize;
    const src = source instanceof ChunkVolume && source.copyDomain !== undefined && source.copyDomain === this.copyDomain ? source : undefined;
    // A clone's chunk keys do not hold what it inherits: copies from a clone go through the target.
    if (!src || src.info.parent || this.journal || this.map.conditional || src.info.chunkSize !== cs || (sourceOffset - offset) % cs !== 0) {
      return [{ sourceOffset, offset, length }];
    }
    // Whole chunks [first, last) of the destination; the head and tail around them go back.
    const first = Math.ceil(offset / cs);
    const last = Math.floor((offset + length) / cs);
    if (first >= last) return [{ sourceOffset, offset, length }];
    const rest: CopyRemainder[] = [];
    const head = first * cs - offset;
    if (head > 0) rest.push({ sourceOffset, offset, length: head });
    const tail = offset + length - last * cs;
    if (tail > 0) rest.push({ sourceOffset: sourceOffset + length - tail, offset: last * cs, length: tail });
    const shift = (sourceOffset - offset) / cs;
    await src.flushChunksToStore(first + shift, last + shift);
    await this.locks.with(first * cs, (last - first) * cs, 'exclusive', async () => {
      this.checkWritable();
      const pairs = [];
      for (let i = first; i < last; i++) pairs.push({ index: i, from: src.layout.chunkKey(i + shift) });
      await this.wb.copyIn(pairs, 'foreground');
    });
    this.stats.bytesCopiedServerSide += (last - first) * cs;
    return rest;
  }

  /**
   * Online hydration of a clone: chunk `i`, if it still reads its parent's object, gets its
   * own copy (server-side: the CloneStore copies from wherever the parent snapshot keeps it,
   * or stores a hole marker). The bytes do not change, so the cache stays as it is; a chunk
   * with writes not yet stored is left to its upload, which makes it the clone's own. With
   * conditional chunk writes the bytes pass through us instead (read, then a conditional PUT,
   * or a hole marker where the parent has none): CopyObject takes no condition. So they do on
   * an encrypted LUN (sealedChunks), where the write seals them as this LUN's.
   */
  async hydrateChunk(i: number): Promise<boolean> {
    this.checkWritable();
    await this.map.load();
    const cs = this.info.chunkSize;
    return this.locks.with(i * cs, cs, 'exclusive', async () => {
      if (this.map.state(i) !== 'inherited' || this.wb.get(i)?.dirty || this.wb.spilled(i)) return false;
      if (this.map.conditional || this.options.sealedChunks) {
        const f = await this.map.fetchWhole(i, 'background');
        // A copy: the fetched buffer may be the cache's, which stays free to evict it.
        await this.map.write(i, f.body ? Buffer.from(f.body) : this.zero, 'background', f.body === null);
        return true;
      }
      await this.map.copyIn([{ index: i, from: this.layout.chunkKey(i) }], 'background');
      return true;
    });
  }

  /** Makes every acknowledged write of the range durable (SYNCHRONIZE CACHE): in the journal if there is one, else in S3. */
  async flush(range?: ByteRange): Promise<void> {
    this.checkReadable();
    if (this.journal) return this.journal.sync();
    const cs = this.info.chunkSize;
    const first = range ? Math.floor(range.offset / cs) : 0;
    await this.wb.flushAll(first, range ? Math.ceil((range.offset + range.length) / cs) : this.map.chunks);
  }

  async setCacheMode(mode: CacheMode): Promise<void> {
    if (mode === 'write-through' && this.mode === 'write-back') await this.flush();
    this.mode = mode;
  }

  /**
   * Runs `fn` at one point of the command stream (a snapshot): every write acknowledged before
   * it is in the store, and none starts until `fn` returns. The dirty data is uploaded before
   * the barrier too, so writers wait only for what was written in the meantime.
   */
  async barrier<T>(fn: () => Promise<T>): Promise<T> {
    this.checkWritable();
    await this.flushToStore();
    return this.locks.with(0, this.info.sizeBytes, 'exclusive', async () => {
      await this.flushToStore();
      return fn();
    });
  }

  /** Makes every acknowledged write to chunks [first, last) durable in S3 (a server-side copy's source). */
  async flushChunksToStore(first: number, last: number): Promise<void> {
    this.checkReadable();
    await this.wb.flushAll(first, last);
  }

  /**
   * Runs `fn`, which replaces the LUN's chunks in the store (a forced online restore), at a
   * barrier: every acknowledged write is in the store first (and, for a journal LUN, out of
   * the journal's replay: a replay after a crash must not bring back writes the restore
   * undid); the cache is emptied and every chunk's state forgotten before, so nothing read
   * before `fn` is served after it.
   */
  async replaceContents<T>(fn: () => Promise<T>): Promise<T> {
    return this.barrier(async () => {
      await this.journal?.checkpoint();
      await this.wb.forgetAll(10_000);
      try {
        return await fn();
      } finally {
        // Whatever `fn` changed (all of it, or part before it failed) is unknown to the cache.
        this.map.forgetAll();
        this.map.load().catch(noop);
      }
    });
  }

  /** Makes every acknowledged write durable in S3, spilled chunks included (replay, close). */
  async flushToStore(): Promise<void> {
    this.checkReadable();
    await this.wb.flushAll(0, this.map.chunks);
  }

  // ---------------------------------------------------------------- provisioning, maintenance

  async allocation(range: ByteRange): Promise<AllocationExtent[]> {
    await this.map.load();
    const out: AllocationExtent[] = [];
    for (const p of pieces(range.offset, range.length, this.info.chunkSize)) {
      const e = this.wb.get(p.index);
      // A dirty chunk will be stored unless it turns out all zeros.
      const mapped = e?.dirty ? !this.wb.isZero(e) : this.wb.spilled(p.index) || this.map.state(p.index) !== 'absent';
      const last = out[out.length - 1];
      if (last && last.mapped === mapped) out[out.length - 1] = { offset: last.offset, length: last.length + p.length, mapped };
      else out.push({ offset: range.offset + p.pos, length: p.length, mapped });
    }
    return out;
  }

  /** The chunk states once the listing is complete (defrag, statistics). */
  async chunkStates(): Promise<ChunkMap> {
    await this.map.load();
    return this.map;
  }

  /** Grows the LUN (see VolumeResizer.grow). */
  async grow(sizeBytes: number): Promise<VolumeInfo> {
    this.checkWritable();
    return this.resizer.grow(sizeBytes);
  }

  /** Deletes what defrag found to be no chunk of this LUN, deciding again now. */
  deleteOrphans(keys: readonly string[]): Promise<number> {
    return this.resizer.deleteOrphans(keys);
  }

  /**
   * One defrag step (SBC has no such command; this is `s3tgt defrag`): under an exclusive lock
   * on the chunk, read its object whole and verify it. An all-zero chunk is discarded (unless
   * dryRun); a chunk with cached writes not yet stored is left to its flush. `reseal`: a chunk
   * with data is written back as it is (re-encoded: `defrag --rekey`, docs/data-at-rest.md).
   */
  async scrubChunk(index: number, dryRun: boolean, reseal = false): Promise<ScrubResult> {
    const cs = this.info.chunkSize;
    return this.locks.with(index * cs, cs, 'exclusive', async () => {
      const e = this.wb.get(index);
      if ((e && e.state !== 'clean') || this.wb.spilled(index)) return 'busy';
      let body: Buffer | null;
      try {
        body = (await this.map.fetchListed(index, 'background')).body;
      } catch (err) {
        if (isStorageError(err, 'data')) return 'corrupt';
        throw err;
      }
      if (!body) return 'hole';
      if (!body.equals(this.zero)) {
        // `defrag --rekey`: stored again, so encoded with the LUN's current codec and key.
        if (reseal && !dryRun) await this.map.write(index, Buffer.from(body), 'background', false);
        return 'mapped';
      }
      if (!dryRun) await this.wb.discard([index], 'background');
      return 'zero';
    });
  }

  // ---------------------------------------------------------------- records, lifecycle

  async loadRecord(name: string): Promise<Buffer | null> {
    return (await this.store.get(this.layout.recordKey(name)))?.body ?? null;
  }

  async saveRecord(name: string, data: Buffer): Promise<void> {
    await this.gated.put(this.layout.recordKey(name), data, { lane: 'foreground' });
  }

  /** Drops clean cached chunks (tests: force reads to go to the store). */
  dropCleanCache(): void {
    this.wb.dropClean();
  }

  /**
   * The final flush, again when the lease lapsed during it (an S3 outage that ended just
   * before a stop: the lease was valid when the stop began and lapsed while an upload ran):
   * the lease's renewal loop still runs and opens the gate once a renewal lands.
   */
  private async flushAllForClose(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.wb.flushAll(0, this.map.chunks);
        return;
      } catch (e) {
        if (this.gate.state !== 'suspended' || attempt === CLOSE_FLUSH_ATTEMPTS) throw e;
        log.warn('the lease lapsed during the final flush; flushing again once it is renewed', { lun: this.layout.name });
        if (!(await this.gate.reopened(CLOSE_REOPEN_WAIT_MS))) throw e;
      }
    }
  }

  /**
   * Flushes every dirty chunk, then shuts the gate: nothing writes to the store after. A volume
   * that lost its lease says so (a fenced error), whether or not it had data left to write.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wb.stop();
    try {
      const dirty = this.wb.dirtyEntries;
      if (this.gate.state === 'fenced') {
        throw new StorageError('fenced', `${this.layout.name}: ${this.gate.reason?.message}; ${dirty} dirty chunks were not written`);
      }
      await this.flushAllForClose();
      // Everything is in S3: a restart must not replay this LUN's records (our lease is
      // released next, and a replay without a lease to vouch for them would refuse).
      await this.journal?.checkpoint();
    } finally {
      this.gate.close();
    }
  }
}
