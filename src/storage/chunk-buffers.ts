/**
 * Recycled 1 MiB chunk buffers. Every write to a chunk not in the cache, every copy-on-write
 * and every segment a read keeps needs one; allocating each afresh makes V8 collect external
 * memory at a high rate. Only buffers this pool handed out come back, and only from an entry
 * nobody reads any more (no lent view, no upload in flight): a fetched body another reader may
 * still hold is never recycled.
 */
export class ChunkBufferPool {
  private readonly free: ArrayBuffer[] = [];
  private readonly mine = new WeakSet<ArrayBuffer>();

  constructor(
    readonly chunkSize: number,
    private readonly maxIdle: number,
  ) {}

  /** A chunk buffer, contents undefined. */
  take(): Buffer {
    const ab = this.free.pop() ?? new ArrayBuffer(this.chunkSize);
    this.mine.add(ab);
    return Buffer.from(ab, 0, this.chunkSize);
  }

  /** Gives back a buffer from `take` that nothing refers to any more; anything else is ignored. */
  give(b: Buffer): void {
    const ab = b.buffer;
    if (!(ab instanceof ArrayBuffer) || !this.mine.has(ab) || b.byteOffset !== 0) return;
    this.mine.delete(ab);
    if (this.free.length < this.maxIdle) this.free.push(ab);
  }

  get idle(): number {
    return this.free.length;
  }
}
