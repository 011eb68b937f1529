/**
 * Reusable receive buffers for large data segments (a 256 KiB WRITE arrives in several TCP
 * reads and is gathered into one buffer). Allocating one per PDU makes V8 collect garbage
 * for the external memory at a high rate; buffers given back once the command that used them
 * has executed are reused instead. Only buffers this pool handed out are taken back, each
 * once, so a stray or double release cannot give one buffer to two PDUs.
 */
const MIN_POOLED = 64 * 1024;
const MAX_POOLED = 16 * 1024 * 1024;
/** Bytes kept idle across all size classes. */
const MAX_IDLE_BYTES = 64 * 1024 * 1024;

export class RxBufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private readonly lent = new WeakSet<ArrayBuffer>();
  private idleBytes = 0;

  /** True when a segment of `n` bytes is worth pooling. */
  static pools(n: number): boolean {
    return n >= MIN_POOLED && n <= MAX_POOLED;
  }

  /** A buffer of exactly `n` bytes (contents undefined). */
  acquire(n: number): Buffer {
    if (!RxBufferPool.pools(n)) return Buffer.allocUnsafe(n);
    const size = 2 ** Math.ceil(Math.log2(n));
    const ab = this.free.get(size)?.pop();
    if (ab) this.idleBytes -= size;
    const backing = ab ?? new ArrayBuffer(size);
    this.lent.add(backing);
    return Buffer.from(backing, 0, n);
  }

  /** Gives a buffer from `acquire` back; anything else is ignored. */
  release(b: Buffer): void {
    const ab = b.buffer;
    if (!(ab instanceof ArrayBuffer) || !this.lent.has(ab)) return;
    this.lent.delete(ab);
    if (this.idleBytes + ab.byteLength > MAX_IDLE_BYTES) return;
    const list = this.free.get(ab.byteLength) ?? [];
    list.push(ab);
    this.free.set(ab.byteLength, list);
    this.idleBytes += ab.byteLength;
  }
}

/** One pool for the process: connections come and go, the buffers stay warm. */
export const RX_POOL = new RxBufferPool();
