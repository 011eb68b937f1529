/**
 * What small reads fetched: checksum segments (integrity.ts) of chunks that have no cache entry, so a
 * second small read of the same segment costs no GET. It lives in the cache's free room only
 * (the Writeback gives it up first when it needs a slot): a segment never evicts a chunk. It
 * holds only what the store has; the Writeback drops a chunk's segments before anything
 * changes the chunk (a write, a discard) and the reader consults it only for chunks without
 * an entry.
 */
export class SegmentCache {
  /** chunk * perChunk + segment -> the segment's bytes; Map order is the LRU order. */
  private readonly segments = new Map<number, Buffer>();
  readonly perChunk: number;

  constructor(
    chunkSize: number,
    private readonly segmentSize: number,
  ) {
    this.perChunk = chunkSize / segmentSize;
  }

  get size(): number {
    return this.segments.size;
  }

  /** Chunk slots the segments take (a slot holds a chunk's worth of segments). */
  get slots(): number {
    return Math.ceil(this.segments.size / this.perChunk);
  }

  /** Copies [inner, inner + length) of chunk i into `out` at `pos` when every segment is here. */
  read(i: number, inner: number, length: number, out: Buffer, pos: number): boolean {
    const first = Math.floor(inner / this.segmentSize);
    const last = Math.floor((inner + length - 1) / this.segmentSize);
    for (let s = first; s <= last; s++) if (!this.segments.has(i * this.perChunk + s)) return false;
    for (let s = first; s <= last; s++) {
      const key = i * this.perChunk + s;
      const seg = this.segments.get(key) as Buffer;
      this.segments.delete(key);
      this.segments.set(key, seg);
      const from = Math.max(inner, s * this.segmentSize);
      const to = Math.min(inner + length, (s + 1) * this.segmentSize);
      seg.copy(out, pos + from - inner, from - s * this.segmentSize, to - s * this.segmentSize);
    }
    return true;
  }

  /** Keeps the whole segments of `body` (chunk bytes from segment-aligned `offset`). */
  keep(i: number, offset: number, body: Buffer): void {
    for (let at = 0; at + this.segmentSize <= body.length; at += this.segmentSize) {
      const key = i * this.perChunk + (offset + at) / this.segmentSize;
      this.segments.delete(key);
      this.segments.set(key, body.subarray(at, at + this.segmentSize));
    }
  }

  /** Forgets chunk i (it is about to change, or a cache entry now holds it). */
  drop(i: number): void {
    if (this.segments.size === 0) return;
    for (let s = 0; s < this.perChunk; s++) this.segments.delete(i * this.perChunk + s);
  }

  /** Frees one chunk slot's worth of the least recently used segments; false when there are none. */
  shrink(): boolean {
    if (this.segments.size === 0) return false;
    let n = this.perChunk;
    for (const key of this.segments.keys()) {
      if (n-- <= 0) break;
      this.segments.delete(key);
    }
    return true;
  }

  clear(): void {
    this.segments.clear();
  }
}
