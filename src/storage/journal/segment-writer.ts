import type * as fs from 'node:fs/promises';
import type { Clock } from '../../util/clock';
import { invariant } from '../../util/invariant';
import { StorageError } from '../errors';
import { writeAll } from '../file-io';
import { encodedLength, encodeHeader, type JournalRecord } from './record';

/** A record as a caller hands it in: the writer numbers it and puts it in a commit group. */
export type RecordInput = Omit<JournalRecord, 'sequence' | 'group' | 'indexInGroup' | 'groupSize'>;

export interface CommitStats {
  readonly records: number;
  readonly bytes: number;
  readonly fsyncMs: number;
}

export interface SegmentWriterOptions {
  readonly clock: Clock;
  /** The next sequence number and commit group (they continue across segments). */
  readonly sequence: number;
  readonly group: number;
  /** At most this many bytes per commit group (one write, one fsync). */
  readonly maxGroupBytes: number;
  readonly onCommit?: (s: CommitStats) => void;
}

interface Waiting {
  readonly input: RecordInput;
  readonly resolve: (sequence: number) => void;
  readonly reject: (e: Error) => void;
}

/**
 * Appends records to one open segment file with group commit: while one group is being
 * written and fsynced, the records that arrive wait; the next group takes all of them (up to
 * `maxGroupBytes`), so one fsync covers every write that arrived during the previous one.
 * `append` resolves once its record is durable. A failed write or fsync leaves the file's
 * tail unknown: the writer refuses every later append (the journal opens a new segment).
 */
export class SegmentWriter {
  private waiting: Waiting[] = [];
  private committing = false;
  private idleWaiters: Array<() => void> = [];
  private failed: Error | undefined;
  private sequence: number;
  private group: number;

  constructor(
    private readonly fh: fs.FileHandle,
    private position: number,
    private readonly o: SegmentWriterOptions,
  ) {
    this.sequence = o.sequence;
    this.group = o.group;
  }

  /** Bytes in the file, durable or being made so. */
  get size(): number {
    return this.position;
  }

  /** The sequence number and group the next record will get. */
  get next(): { readonly sequence: number; readonly group: number } {
    return { sequence: this.sequence, group: this.group };
  }

  get broken(): Error | undefined {
    return this.failed;
  }

  /** Waits for the records in flight, then closes the file. */
  async close(): Promise<void> {
    await this.idle();
    await this.fh.close();
  }

  /** Resolves once every record appended so far is durable (or failed). */
  async idle(): Promise<void> {
    while (this.committing) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /** Resolves with the record's sequence number once it is on disk (written and fsynced). */
  append(input: RecordInput): Promise<number> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<number>((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      if (!this.committing) void this.commitLoop();
    });
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
    const first = this.sequence;
    this.sequence += batch.length;
    const parts: Buffer[] = [];
    let bytes = 0;
    batch.forEach((w, k) => {
      const record: JournalRecord = { ...w.input, sequence: first + k, group, indexInGroup: k, groupSize: batch.length };
      parts.push(encodeHeader(record));
      if (record.data.length > 0) parts.push(record.data);
      bytes += encodedLength(record);
    });
    const at = this.position;
    this.position += bytes;
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
    batch.forEach((w, k) => {
      w.resolve(first + k);
    });
  }
}
