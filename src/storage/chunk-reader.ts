import type { ChunkEntry } from './chunk-entry';
import type { ChunkMap } from './chunk-map';
import { segmentAligned } from './integrity';
import type { ReadView } from './volume';
import type { VolumeStats } from './volume-stats';
import type { Writeback } from './writeback';

/** One chunk's part of a byte range. */
export interface Piece {
  readonly index: number;
  /** Offset inside the chunk. */
  readonly inner: number;
  readonly length: number;
  /** Offset inside the caller's buffer. */
  readonly pos: number;
}

export function* pieces(offset: number, length: number, chunkSize: number): Generator<Piece> {
  for (let pos = 0; pos < length; ) {
    const index = Math.floor((offset + pos) / chunkSize);
    const inner = offset + pos - index * chunkSize;
    const len = Math.min(chunkSize - inner, length - pos);
    yield { index, inner, length: len, pos };
    pos += len;
  }
}

/** A read that holds nothing in the cache. */
export const NO_RELEASE = (): void => undefined;
const noop = (): void => undefined;

/**
 * The read path of a chunk volume (the caller holds the range lock): from the cache without a
 * copy where it can, from holes without a request, from the store through the ChunkMap (whole
 * chunks shared, small reads as ranged GETs whose segments the cache keeps), and read-ahead
 * for sequential readers. A dirty chunk's missing sectors are filled once, by the Writeback.
 */
export class ChunkReader {
  private sequentialEnd = -1;
  private sequentialStreak = 0;

  constructor(
    private readonly map: ChunkMap,
    private readonly wb: Writeback,
    private readonly stats: VolumeStats,
    private readonly chunkSize: number,
    private readonly readAheadChunks: number,
    /** ChunkVolumeOptions.wholeChunkReads */
    private readonly wholeChunkReads = false,
  ) {}

  /**
   * A read inside one chunk, without a copy where it can: a view of the cached chunk (counted
   * as a reader, so a write meanwhile copies the chunk first) or of the chunk just fetched.
   */
  async withinChunk(p: Piece, sequential = false): Promise<ReadView> {
    const e = this.wb.get(p.index);
    if (!e && this.wb.spilled(p.index)) {
      const out = Buffer.allocUnsafe(p.length);
      await this.restored(p, out);
      return { data: out, release: NO_RELEASE };
    }
    if (e?.covers(p.inner, p.length)) {
      this.wb.touch(e);
      this.wb.readBy(e, sequential);
      this.stats.cacheHits++;
      return { data: e.buf.subarray(p.inner, p.inner + p.length), release: e.lend() };
    }
    if (!e && !this.map.isAbsent(p.index) && p.length >= this.chunkSize / 2) {
      this.stats.cacheMisses++;
      const f = await this.map.fetchWhole(p.index, 'foreground', sequential);
      if (!f.body) return { data: Buffer.alloc(p.length), release: NO_RELEASE };
      // The cache kept this very buffer or not (decided once, see ChunkMap.onWholeFetched).
      const cached = this.wb.get(p.index);
      const kept = cached?.buf === f.body ? cached : undefined;
      if (kept) this.wb.readBy(kept, sequential);
      return { data: f.body.subarray(p.inner, p.inner + p.length), release: kept ? kept.lend() : NO_RELEASE };
    }
    const out = Buffer.allocUnsafe(p.length);
    const t = this.piece(p, out, sequential);
    if (t) await t;
    return { data: out, release: NO_RELEASE };
  }

  /** Reads `out.length` bytes from `offset` into `out` (`sequential`: for a reader in a sequential run). */
  async into(offset: number, out: Buffer, sequential = false): Promise<void> {
    const tasks: Promise<void>[] = [];
    for (const p of pieces(offset, out.length, this.chunkSize)) {
      const t = this.piece(p, out, sequential);
      if (t) tasks.push(t);
    }
    if (tasks.length > 0) await Promise.all(tasks);
  }

  /** Serves one chunk's part of a read; returns a promise only when it must wait. */
  private piece(p: Piece, out: Buffer, sequential: boolean): Promise<void> | undefined {
    const e = this.wb.get(p.index);
    if (!e && this.wb.spilled(p.index)) return this.restored(p, out);
    if (e?.covers(p.inner, p.length)) {
      e.buf.copy(out, p.pos, p.inner, p.inner + p.length);
      this.wb.touch(e);
      this.wb.readBy(e, sequential);
      this.stats.cacheHits++;
      return undefined;
    }
    if (!e && this.map.isAbsent(p.index)) {
      out.fill(0, p.pos, p.pos + p.length);
      this.stats.holeReads++;
      return undefined;
    }
    if (!e && this.wb.segments.read(p.index, p.inner, p.length, out, p.pos)) {
      this.stats.cacheHits++;
      return undefined;
    }
    return e && e.state !== 'clean' ? this.filled(e, p, out) : this.stored(p, out, sequential);
  }

  /** A chunk whose latest data is only in the journal: read back into the cache, then served. */
  private async restored(p: Piece, out: Buffer): Promise<void> {
    const e = await this.wb.entryForWrite(p.index);
    try {
      // Uploaded meanwhile (clean): the sectors it lacks are the store's.
      if (e.state === 'clean' && !e.covers(p.inner, p.length)) return await this.stored(p, out, false);
      if (!e.covers(p.inner, p.length)) await this.wb.fill(e, 'foreground', { offset: p.inner, length: p.length });
      e.buf.copy(out, p.pos, p.inner, p.inner + p.length);
    } finally {
      this.wb.unpin(e);
    }
  }

  /** A dirty chunk with sectors nobody wrote: bring in the stored base once, then serve. */
  private async filled(e: ChunkEntry, p: Piece, out: Buffer): Promise<void> {
    e.pins++;
    try {
      await this.wb.fill(e, 'foreground', { offset: p.inner, length: p.length });
      e.buf.copy(out, p.pos, p.inner, p.inner + p.length);
    } finally {
      this.wb.unpin(e);
    }
  }

  /** From the store: the whole chunk (shared GET), or a ranged GET widened to checksum segments, kept in the cache. */
  private async stored(p: Piece, out: Buffer, sequential: boolean): Promise<void> {
    this.stats.cacheMisses++;
    const cs = this.chunkSize;
    const f =
      p.length >= cs / 2 || this.wholeChunkReads
        ? await this.map.fetchWhole(p.index, 'foreground', sequential)
        : await this.map.fetchRange(p.index, segmentAligned(p.inner, p.length, cs, this.map.segmentSize), 'foreground');
    if (!f.body) out.fill(0, p.pos, p.pos + p.length);
    else f.body.copy(out, p.pos, p.inner - f.offset, p.inner - f.offset + p.length);
    if (f.body && f.body.length < cs) this.wb.adopt(p.index, f);
    const cached = f.body?.length === cs ? this.wb.get(p.index) : undefined;
    if (cached?.buf === f.body) this.wb.readBy(cached, sequential);
  }

  /**
   * At each read, in issue order: a third read in a row that starts where the last ended is
   * sequential (returns true), and starts read-ahead.
   */
  noteSequential(offset: number, length: number): boolean {
    this.sequentialStreak = offset === this.sequentialEnd ? this.sequentialStreak + 1 : 0;
    this.sequentialEnd = offset + length;
    if (this.sequentialStreak < 2) return false;
    if (this.readAheadChunks > 0) {
      const next = Math.floor((offset + length) / this.chunkSize);
      this.prefetch(next, Math.min(this.map.chunks, next + this.readAheadChunks));
    }
    return true;
  }

  /** Fetches chunks [from, to) in the background; evicts clean chunks (LRU), never waits for dirty ones. */
  prefetch(from: number, to: number): void {
    for (let i = from; i < to; i++) {
      if (this.wb.get(i) || this.map.isAbsent(i)) continue;
      if (this.wb.dirtyEntries >= this.wb.capacity - 1) return;
      this.map.fetchWhole(i, 'background', true).then(() => {
        this.stats.readAheadChunks++;
      }, noop);
    }
  }
}
