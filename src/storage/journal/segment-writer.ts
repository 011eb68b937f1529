import type * as fs from 'node:fs/promises';
import type { Clock } from '../../util/clock';
import { invariant } from '../../util/invariant';
import type { Parts } from '../../util/parts';
import { StorageError } from '../errors';
import { writeAll } from '../file-io';
import { type EncodableRecord, encodedLength, encodeHeader, type JournalRecord } from './record';

/**
 * A record as a caller hands it in: the writer numbers it and puts it in a commit group. Its
 * data may be the buffers it arrived in; they must not change until the record is durable.
 */
export type RecordInput = Omit<JournalRecord, 'sequence' | 'group' | 'indexInGroup' | 'groupSize' | 'data'> & {
  readonly data: Buffer | Parts;
};

export interface CommitStats {
  readonly records: number;
  readonly bytes: number;
  readonly fsyncMs: number;
}

/**
 * Where a commit group is replicated (docs/ha.md, "Journal replication"): the group's bytes as
 * written to the segment. Resolves once it is durable there (or the journal runs local-only,
 * declared); rejects to fail the group's records.
 */
export type Mirror = (parts: readonly Buffer[], bytes: number) => Promise<void>;

export interface SegmentWriterOptions {
  readonly clock: Clock;
  /** The next sequence number and commit group (they continue across segments). */
  readonly sequence: number;
  readonly group: number;
  /** At most this many bytes per commit group (one write, one fsync). */
  readonly maxGroupBytes: number;
  readonly onCommit?: (s: CommitStats) => void;
  readonly mirror?: Mirror;
}

/** A record handed to the writer: numbered and placed at once, durable later. */
export interface Enqueued {
  readonly sequence: number;
  /** Where the record starts in the segment file. */
  readonly position: number;
  /** Resolves once the record is written and fsynced; rejects if that failed. */
  readonly durable: Promise<void>;
}

interface Waiting {
  readonly input: RecordInput;
  readonly sequence: number;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/**
 * Appends records to one open segment file with group commit: while one group is being
 * written and fsynced, the records that arrive wait; the next group takes all of them (up to
 * `maxGroupBytes`), so one fsync covers every write that arrived during the previous one.
 * A record gets its sequence number and file position when it is handed in (synchronously, so
 * a caller can tie it to the cache write it journals); it is durable once `durable` resolves.
 * A failed write or fsync leaves the file's tail unknown: the writer refuses every later
 * append (the journal opens a new segment).
 */
export class SegmentWriter {
  private waiting: Waiting[] = [];
  private committing = false;
  private idleWaiters: Array<() => void> = [];
  private failed: Error | undefined;
  private sequence: number;
  private group: number;
  /** Where the next enqueued record will start (`position` is where the next group is written). */
  private end: number;
  /** Every record up to this sequence number is durable. */
  private durableSeq: number;

  constructor(
    private readonly fh: fs.FileHandle,
    private position: number,
    private readonly o: SegmentWriterOptions,
  ) {
    this.sequence = o.sequence;
    this.group = o.group;
    this.end = position;
    this.durableSeq = o.sequence - 1;
  }

  /** Bytes in the file, durable or being made so. */
  get size(): number {
    return this.end;
  }

  /** The sequence number and group the next record will get. */
  get next(): { readonly sequence: number; readonly group: number } {
    return { sequence: this.sequence, group: this.group };
  }

  /** The highest sequence number up to which every record of this writer is durable. */
  get durableThrough(): number {
    return this.durableSeq;
  }

  get broken(): Error | undefined {
    return this.failed;
  }

  /** Waits for the records in flight, then closes the file. */
  async close(): Promise<void> {
    await this.idle();
    await this.fh.close();
  }

  /**
   * Resolves once every record up to `sequence` is durable; rejects if the writer broke first.
   * (Unlike `idle`, it does not wait for records handed in later: no starvation under load.)
   */
  async durableUpTo(sequence: number): Promise<void> {
    while (this.durableSeq < sequence) {
      if (this.failed) throw this.failed;
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
  }

  /** Resolves once every record appended so far is durable (or failed). */
  async idle(): Promise<void> {
    while (this.committing) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /** Resolves with the record's sequence number once it is on disk (written and fsynced). */
  async append(input: RecordInput): Promise<number> {
    const e = this.enqueue(input);
    await e.durable;
    return e.sequence;
  }

  /** Numbers and places the record now; its `durable` settles when its group's fsync does. */
  enqueue(input: RecordInput): Enqueued {
    if (this.failed) throw this.failed;
    const sequence = this.sequence++;
    const position = this.end;
    this.end += encodedLength(input);
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const durable = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A caller that does not wait for durability (a write-back LUN) must not crash the process
    // with an unhandled rejection: the failure also breaks the writer, which every later
    // append and sync reports.
    durable.catch(() => undefined);
    this.waiting.push({ input, sequence, resolve, reject });
    if (!this.committing) void this.commitLoop();
    return { sequence, position, durable };
  }

  private async commitLoop(): Promise<void> {
    this.committing = true;
    try {
      while (this.waiting.length > 0 && !this.failed) await this.commitOne(this.takeGroup());
    } finally {
      this.committing = false;
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  private takeGroup(): Waiting[] {
    let bytes = 0;
    let n = 0;
    while (n < this.waiting.length) {
      const len = encodedLength(this.waiting[n].input);
      if (n > 0 && bytes + len > this.o.maxGroupBytes) break;
      bytes += len;
      n++;
    }
    return this.waiting.splice(0, n);
  }

  private async commitOne(batch: Waiting[]): Promise<void> {
    invariant(batch.length > 0, () => 'an empty commit group');
    const group = this.group++;
    const parts: Buffer[] = [];
    let bytes = 0;
    batch.forEach((w, k) => {
      const record: EncodableRecord = { ...w.input, sequence: w.sequence, group, indexInGroup: k, groupSize: batch.length };
      parts.push(encodeHeader(record));
      if (Buffer.isBuffer(w.input.data)) {
        if (w.input.data.length > 0) parts.push(w.input.data);
      } else parts.push(...w.input.data);
      bytes += encodedLength(record);
    });
    const at = this.position;
    this.position += bytes;
    const last = batch[batch.length - 1].sequence;
    // The peer's copy is written while the local one is: one round trip hides behind the fsync.
    const mirrored = this.o.mirror?.(parts, bytes);
    mirrored?.catch(() => undefined);
    try {
      await writeAll(this.fh, parts, at);
      const t0 = this.o.clock.now();
      await this.fh.datasync();
      this.o.onCommit?.({ records: batch.length, bytes, fsyncMs: this.o.clock.now() - t0 });
    } catch (e) {
      const err = new StorageError('unavailable', `journal write failed: ${(e as Error).message}`, { code: 'STORE_ERR_JOURNAL_IO', cause: e });
      this.failed = err;
      for (const w of [...batch, ...this.waiting.splice(0)]) w.reject(err);
      return;
    }
    let refused: Error | undefined;
    try {
      await mirrored;
    } catch (e) {
      // Not replicated (a peer took the LUN, or the journal could not be declared local-only):
      // the records are on local disk but not acknowledged; the segment stays usable.
      refused = e as Error;
    }
    this.durableSeq = last;
    for (const w of batch) {
      if (refused) w.reject(refused);
      else w.resolve();
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of waiters) r();
  }
}
