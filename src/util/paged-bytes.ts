import { invariant } from './invariant';

const PAGE_BITS = 16;
const PAGE = 1 << PAGE_BITS;
const MASK = PAGE - 1;

/**
 * A byte per index, stored in pages of 64 Ki entries that exist only once an entry differs
 * from the rest of its page: a page whose entries are all equal is that one number. A LUN's
 * per-chunk state is mostly one value over wide ranges (an empty or sparse 1 TiB LUN: a
 * million chunks, nearly all absent), so 200 such LUNs cost kilobytes instead of 200 MiB.
 */
export class PagedBytes {
  private pages: Array<Uint8Array | number>;

  constructor(
    private count: number,
    fill = 0,
  ) {
    this.pages = Array.from({ length: Math.ceil(count / PAGE) }, () => fill);
  }

  get length(): number {
    return this.count;
  }

  get(i: number): number {
    const p = this.pages[i >>> PAGE_BITS];
    return typeof p === 'number' ? p : p[i & MASK];
  }

  set(i: number, v: number): void {
    const k = i >>> PAGE_BITS;
    const p = this.pages[k];
    if (typeof p === 'number') {
      if (p === v) return;
      const bytes = new Uint8Array(PAGE).fill(p);
      bytes[i & MASK] = v;
      this.pages[k] = bytes;
      return;
    }
    p[i & MASK] = v;
  }

  /** Grows to `count` entries, the new ones `fill`. */
  grow(count: number, fill: number): void {
    invariant(count >= this.count, () => `PagedBytes never shrinks (${this.count} -> ${count})`);
    for (let i = this.count; i < count && i % PAGE !== 0; i++) this.set(i, fill);
    for (let k = Math.ceil(this.count / PAGE); k < Math.ceil(count / PAGE); k++) this.pages[k] = fill;
    this.count = count;
  }

  /** Sets entries [from, to) to `v` (a whole page at once where the range covers it). */
  fill(from: number, to: number, v: number): void {
    for (let i = from; i < to; ) {
      const k = i >>> PAGE_BITS;
      const pageEnd = Math.min((k + 1) * PAGE, this.count);
      if (i === k * PAGE && to >= pageEnd) {
        this.pages[k] = v;
        i = pageEnd;
      } else {
        this.set(i, v);
        i++;
      }
    }
  }

  /**
   * The end of the run of equal entries known to start at `i` without looking at each: the end
   * of its page if the page is uniform, else i + 1.
   */
  runEnd(i: number): number {
    const k = i >>> PAGE_BITS;
    return typeof this.pages[k] === 'number' ? Math.min((k + 1) * PAGE, this.count) : i + 1;
  }

  /**
   * The runs of equal entries page by page: `fn(from, to, value)` for a whole uniform page,
   * once per index otherwise (to = from + 1). Lets callers treat an untouched range at once.
   */
  forEachRun(fn: (from: number, to: number, value: number) => void): void {
    for (let k = 0; k < this.pages.length; k++) {
      const from = k * PAGE;
      const to = Math.min(from + PAGE, this.count);
      const p = this.pages[k];
      if (typeof p === 'number') fn(from, to, p);
      else for (let i = from; i < to; i++) fn(i, i + 1, p[i - from]);
    }
  }

  /** Pages that hold a byte array (for tests and memory accounting). */
  get materializedPages(): number {
    return this.pages.filter((p) => typeof p !== 'number').length;
  }
}
