import { invariant } from '../util/invariant';
import type { JournalRecord } from './journal/record';

/** Granularity of the valid-sector map: the smallest logical block. */
export const SECTOR = 512;

/**
 * The life of a cached chunk. Only Writeback moves an entry, through `to`, which refuses any
 * transition not in this table:
 * - clean: its valid sectors equal the store's content (all of them, or the segments a read
 *   fetched); evictable when idle;
 * - dirty: holds acknowledged writes the store does not have yet (some sectors may still be
 *   missing: the base is fetched only when a flush or a read needs it);
 * - filling: dirty, and the stored base of the missing sectors is being fetched;
 * - uploading: a PUT (or DELETE, all zeros) of generation `uploadGen` is in flight; writes may
 *   still land (copy-on-write of the buffer being sent);
 * - discarding: a whole-chunk discard's DELETE is in flight; nothing reads or writes it
 *   (the discard holds the range lock); evicted when the DELETE succeeded, dirty otherwise
 *   (the DELETE may have landed: the data must be written again);
 * - evicted: gone from the cache; nothing may use it. A dirty entry is evicted only when a
 *   discard superseded it, or when every write it holds is durable in the LUN's journal
 *   (spilled: its records are read back before the chunk is used again).
 */
export type EntryState = 'clean' | 'dirty' | 'filling' | 'uploading' | 'discarding' | 'evicted';

const ALLOWED: Readonly<Record<EntryState, readonly EntryState[]>> = {
  clean: ['dirty', 'discarding', 'evicted'],
  dirty: ['filling', 'uploading', 'discarding', 'evicted'],
  filling: ['dirty'],
  uploading: ['clean', 'dirty'],
  discarding: ['dirty', 'evicted'],
  evicted: [],
};

export class ChunkEntry {
  private stateValue: EntryState;
  /** Which 512-byte sectors of `buf` hold current data. */
  readonly valid: Uint8Array;
  validCount = 0;
  /** Modifications so far, and the latest one the store has (dirty while they differ). */
  gen = 0;
  durableGen = 0;
  /** The generation an upload in flight sends (0 when none). */
  uploadGen = 0;
  /** The buffer an upload in flight sends: a write then moves to a copy first. */
  uploading: Buffer | undefined;
  /** Views of `buf` lent to readers that may still be sending it (a write copies first). */
  readers = 0;
  /** Callers between finding the entry and being done with it: never evicted meanwhile. */
  pins = 0;
  lastWrite = 0;
  /** When it became dirty (the flusher does not wait for a hot chunk forever). */
  dirtySince = 0;
  failures = 0;
  /**
   * The highest journal sequence number whose data `buf` holds (every record of this chunk up
   * to it is in `buf`: records are numbered in the same synchronous step as the cache write).
   */
  journalSeq = 0;
  /**
   * Restored from the journal: the chunk's pending records (older than anything in `buf`) are
   * still to be merged into the sectors not valid, before the store's base (Writeback.fill).
   */
  journalBase = false;
  /** Holds a write since its last upload that is in no journal record (replay, or no journal). */
  unjournaled = false;
  /** The flusher leaves a failing entry alone until then (clock ms). */
  retryAt = 0;
  /** Settles when the current fill, upload or discard ends. */
  busy: Promise<void> | undefined;

  constructor(
    readonly index: number,
    public buf: Buffer,
    state: 'clean' | 'dirty',
  ) {
    this.stateValue = state;
    this.valid = new Uint8Array(buf.length / SECTOR);
  }

  get state(): EntryState {
    return this.stateValue;
  }

  /** Moves to `next`; any other transition than the table's is our bug. */
  to(next: EntryState): void {
    invariant(ALLOWED[this.stateValue].includes(next), () => `chunk ${this.index}: ${this.stateValue} -> ${next} is not a transition`);
    this.stateValue = next;
  }

  /** Holds data the store does not have yet. */
  get dirty(): boolean {
    return this.gen !== this.durableGen;
  }

  /** Nothing in flight: may be filled, uploaded, discarded or evicted. */
  get idle(): boolean {
    return this.stateValue === 'clean' || this.stateValue === 'dirty';
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

  /**
   * Fills every sector not yet valid from `base` (holding chunk bytes from `at`; zeros when
   * null) within [from, to); sectors written meanwhile keep their data.
   */
  merge(base: Buffer | null, at: number, from: number, to: number): void {
    let s = from / SECTOR;
    const end = to / SECTOR;
    while (s < end) {
      if (this.valid[s]) {
        s++;
        continue;
      }
      let e = s;
      while (e < end && !this.valid[e]) e++;
      if (base) base.copy(this.buf, s * SECTOR, s * SECTOR - at, e * SECTOR - at);
      else this.buf.fill(0, s * SECTOR, e * SECTOR);
      for (let k = s; k < e; k++) this.valid[k] = 1;
      this.validCount += e - s;
      s = e;
    }
  }

  /**
   * Fills the sectors not yet valid from the chunk's journal records (a restored entry: they
   * are older than anything written into it since), applied in sequence order (a discard
   * zeros its range). Afterwards `buf` holds every record up to the last one, so its upload
   * retires them.
   */
  mergeRecords(records: readonly JournalRecord[]): void {
    const size = this.buf.length;
    const scratch = new ChunkEntry(this.index, Buffer.allocUnsafe(size), 'dirty');
    let last = 0;
    for (const r of records) {
      invariant(
        r.sequence > last && r.chunk === this.index && r.offset + r.length <= size,
        () => `chunk ${this.index}: journal record ${r.sequence} does not fit`,
      );
      last = r.sequence;
      if (r.kind === 'write') r.data.copy(scratch.buf, r.offset);
      else if (r.kind === 'discard') scratch.buf.fill(0, r.offset, r.offset + r.length);
      scratch.markValid(r.offset, r.length);
    }
    for (let s = 0; s < scratch.valid.length; s++) {
      if (scratch.valid[s] && !this.valid[s]) {
        scratch.buf.copy(this.buf, s * SECTOR, s * SECTOR, (s + 1) * SECTOR);
        this.markValid(s * SECTOR, SECTOR);
      }
    }
    if (last > this.journalSeq) this.journalSeq = last;
  }

  /** Before modifying `buf`: whoever still reads it (an upload, a lent view) keeps the old bytes. */
  needsCopy(): boolean {
    return this.uploading === this.buf || this.readers > 0;
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
}
