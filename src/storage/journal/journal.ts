import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Clock } from '../../util/clock';
import { invariant } from '../../util/invariant';
import { log } from '../../util/log';
import { WakeList } from '../../util/wake-list';
import { StorageError } from '../errors';
import { syncDir } from '../file-io';
import type { HostIdentity } from '../lease-record';
import { lockJournalDir } from './journal-lock';
import { PendingIndex, readRecordsAt, type SegmentRef } from './pending-index';
import { encodedLength, type JournalRecord, uuidHex } from './record';
import { type SegmentScan, scanSegment } from './segment-scan';
import { type CommitStats, type Mirror, type RecordInput, SegmentWriter } from './segment-writer';

export interface JournalOptions {
  readonly dir: string;
  /** Bytes of segment files at most (the upload buffer). */
  readonly sizeBytes: number;
  /** A segment is closed and a new one started past this size (default: size / 8, at most 64 MiB). */
  readonly segmentBytes?: number;
  /** Bytes per commit group at most (default 4 MiB). */
  readonly maxGroupBytes?: number;
  /** How long an append waits for room before failing retryably. */
  readonly spaceTimeoutMs: number;
  /**
   * The longest a journaled write waits before its chunk is uploaded (default 30 s): longer
   * coalesces more writes per upload; it is what S3 lacks if the journal's disk is lost.
   */
  readonly uploadDelayMs?: number;
  readonly clock: Clock;
  readonly identity: HostIdentity;
  readonly onCommit?: (s: CommitStats) => void;
  /**
   * Each commit group, as written to the segment, is also handed here (journal replication:
   * docs/ha.md); the group's records are durable once both the local fsync and this resolve.
   */
  readonly mirror?: Mirror;
}

interface Segment {
  readonly id: number;
  readonly file: string;
  /** Bytes written or reserved. */
  bytes: number;
  /** Records not yet in S3. */
  pending: number;
  /** Found at start-up (or given up: abandon): its records, by LUN, are pending until settled. */
  recovered?: Map<string, number>;
}

/** A record found at start-up: its header and where it is (its data is read when needed). */
export type RecoveredRecord = Omit<JournalRecord, 'data'> & {
  readonly seg: SegmentRef;
  readonly position: number;
  readonly bytes: number;
};

/** A record handed to the journal: numbered now, durable when `durable` resolves. */
export interface Placed {
  readonly sequence: number;
  readonly durable: Promise<void>;
}

const SEGMENT = /^seg-([0-9a-f]{16})\.log$/;
const segmentName = (id: number): string => `seg-${id.toString(16).padStart(16, '0')}.log`;

/**
 * The server's local journal (docs/journal.md): a directory of segment files, one being
 * appended with group commit. Segments are deleted oldest first once none of their records is
 * pending (replay applies a suffix of the records in order, which is only right if no older
 * segment outlives a newer one). A failed write or fsync breaks the journal until restart:
 * appends then fail retryably, and the next start truncates the torn tail.
 */
export class Journal {
  private readonly segments: Segment[] = [];
  private writer!: SegmentWriter;
  private rotating: Promise<void> | undefined;
  private used = 0;
  private readonly pending = new PendingIndex();
  private readonly spaceWaiters: WakeList;
  private readonly segmentBytes: number;
  private closed = false;

  private constructor(
    private readonly o: JournalOptions,
    private readonly unlock: () => Promise<void>,
    /** Every record found at start-up, by LUN (32 hex digits), until its replay is done. */
    private readonly recovered: Map<string, RecoveredRecord[]>,
  ) {
    this.spaceWaiters = new WakeList(o.clock);
    this.segmentBytes = o.segmentBytes ?? Math.min(64 * 1024 * 1024, Math.floor(o.sizeBytes / 8));
    invariant(
      this.segmentBytes >= 1024 * 1024 && this.segmentBytes * 2 <= o.sizeBytes,
      () => `journal: segments of ${this.segmentBytes} bytes in ${o.sizeBytes}`,
    );
  }

  /**
   * Locks the directory, reads every segment (a torn tail of the last one is cut off; damage
   * anywhere else stops with STORE_ERR_JOURNAL_CORRUPT naming file and offset), and starts a
   * new segment for appends.
   */
  static async open(o: JournalOptions): Promise<Journal> {
    const unlock = await lockJournalDir(o.dir, o.identity);
    try {
      const ids = (await fs.readdir(o.dir))
        .map((n) => SEGMENT.exec(n)?.[1])
        .filter((h): h is string => h !== undefined)
        .map((h) => Number.parseInt(h, 16))
        .sort((a, b) => a - b);
      // One segment in memory at a time: what is kept of a record is its header and place.
      const recovered = new Map<string, RecoveredRecord[]>();
      const j = new Journal(o, unlock, recovered);
      let next = { sequence: 1, group: 1 };
      for (const [k, id] of ids.entries()) {
        const file = path.join(o.dir, segmentName(id));
        const scan = scanSegment(await fs.readFile(file));
        const last = k === ids.length - 1;
        if (scan.tail === 'corrupt' || (scan.tail === 'torn' && !last)) throw corrupt(file, scan);
        if (scan.tail === 'torn') {
          log.warn('journal: cut off the torn tail of the last segment (a write that was never acknowledged)', {
            file,
            at: scan.end,
            why: scan.damage?.why,
          });
          await truncate(file, scan.end);
        }
        const seg: Segment = { id, file, bytes: scan.end, pending: 0, recovered: new Map() };
        j.segments.push(seg);
        j.used += seg.bytes;
        // Records are contiguous from the segment's start up to `end`. A checkpoint says every
        // earlier record of its LUN is in S3: only what follows the last one is recovered.
        let position = 0;
        for (const r of scan.records) {
          const bytes = encodedLength(r);
          const { data: _, ...header } = r;
          if (r.kind === 'checkpoint') recovered.delete(r.lun);
          else {
            const list = recovered.get(r.lun) ?? [];
            list.push({ ...header, seg, position, bytes });
            recovered.set(r.lun, list);
          }
          position += bytes;
          next = { sequence: r.sequence + 1, group: r.group + 1 };
        }
      }
      for (const [lun, list] of recovered) {
        for (const r of list) {
          const seg = r.seg as Segment;
          const byLun = seg.recovered as Map<string, number>;
          byLun.set(lun, (byLun.get(lun) ?? 0) + 1);
          seg.pending++;
        }
      }
      const lastId = ids.at(-1) ?? 0;
      await j.startSegment(lastId + 1, next);
      j.recycle();
      return j;
    } catch (e) {
      await unlock();
      throw e;
    }
  }

  /** Every record a LUN left, read back (tests and small journals: all of them in memory). */
  async readRecovered(lun: string): Promise<JournalRecord[]> {
    return readRecordsAt(this.recoveredFor(lun));
  }

  /** The records a LUN left in the journal at the last stop (headers and places), in sequence order. */
  recoveredFor(lun: string): readonly RecoveredRecord[] {
    return this.recovered.get(uuidHex(lun)) ?? [];
  }

  /**
   * The records a LUN left, read back from their segments and verified, one chunk's records at
   * a time (in sequence order within the chunk, chunks in the order their first record came):
   * replay and quarantine never hold more than one chunk's records in memory.
   */
  async *recoveredChunks(lun: string): AsyncGenerator<JournalRecord[]> {
    const byChunk = new Map<number, RecoveredRecord[]>();
    for (const r of this.recoveredFor(lun)) {
      const list = byChunk.get(r.chunk) ?? [];
      list.push(r);
      byChunk.set(r.chunk, list);
    }
    for (const list of byChunk.values()) yield await readRecordsAt(list);
  }

  /** LUNs (32 hex digits) with recovered records not yet replayed. */
  get recoveredLuns(): readonly string[] {
    return [...this.recovered.keys()];
  }

  get dir(): string {
    return this.o.dir;
  }

  get uploadDelayMs(): number {
    return this.o.uploadDelayMs ?? 30_000;
  }

  get usedBytes(): number {
    return this.used;
  }

  get capacityBytes(): number {
    return this.o.sizeBytes;
  }

  /** Makes a record durable in the journal; resolves with its sequence number. */
  async append(input: RecordInput): Promise<number> {
    const p = await this.place(input);
    await p.durable;
    return p.sequence;
  }

  /**
   * Waits for room (at most spaceTimeoutMs, then STORE_ERR_JOURNAL_FULL), then numbers the
   * record and hands it to the writer in one synchronous step, in which `placed` runs with its
   * sequence number: a caller copies the data into its cache there, so that a chunk's cached
   * content always includes exactly its records up to some sequence number (see `retire`).
   */
  async place(input: RecordInput, placed?: (sequence: number) => void): Promise<Placed> {
    this.checkOpen();
    const len = encodedLength(input);
    await this.room(len);
    for (;;) {
      this.checkOpen();
      if (this.rotating) {
        await this.rotating;
        continue;
      }
      const seg = this.segments[this.segments.length - 1];
      if (seg.bytes !== 0 && seg.bytes + len > this.segmentBytes) {
        this.rotating ??= this.rotate(seg).finally(() => {
          this.rotating = undefined;
        });
        continue;
      }
      // A checkpoint claims every earlier record of its LUN is in S3: not if one was placed meanwhile.
      if (input.kind === 'checkpoint' && !this.pending.clean(input.lun)) return { sequence: 0, durable: Promise.resolve() };
      const q = this.writer.enqueue(input);
      seg.bytes += len;
      this.used += len;
      if (input.kind !== 'checkpoint') {
        this.pending.add(input.lun, input.chunk, { seq: q.sequence, seg, position: q.position, bytes: len, at: this.o.clock.now() });
      }
      placed?.(q.sequence);
      return { sequence: q.sequence, durable: q.durable };
    }
  }

  /** Resolves once every record placed so far is durable (SYNCHRONIZE CACHE of a write-back LUN). */
  async sync(): Promise<void> {
    for (;;) {
      this.checkOpen();
      if (this.rotating) await this.rotating;
      const w = this.writer;
      await w.durableUpTo(w.next.sequence - 1);
      if (w === this.writer) return;
    }
  }

  /** The sequence number the next record will get. */
  get nextSequence(): number {
    return this.writer.next.sequence;
  }

  /**
   * Every record before this sequence number is in S3 (or superseded by a checkpoint): the
   * oldest record not yet uploaded, or the next to be placed. Records recovered at start and
   * not yet adopted or replayed count too.
   */
  get uploadedBelow(): number {
    let min = this.pending.oldest() ?? this.writer.next.sequence;
    for (const list of this.recovered.values()) if (list.length > 0 && list[0].sequence < min) min = list[0].sequence;
    return min;
  }

  /**
   * Drops a LUN's recovered records written under `holders`: copies a takeover elsewhere
   * applied from its replica (docs/ha.md), superseded since.
   */
  dropRecovered(lun: string, holders: ReadonlySet<string>): number {
    const hex = uuidHex(lun);
    const list = this.recovered.get(hex) ?? [];
    const gone = list.filter((r) => holders.has(uuidHex(r.holder)));
    for (const r of gone) {
      const seg = r.seg as Segment;
      const byLun = seg.recovered as Map<string, number>;
      const n = (byLun.get(hex) ?? 0) - 1;
      invariant(n >= 0, () => `journal segment ${seg.id}: recovered count of ${hex} below 0`);
      if (n === 0) byLun.delete(hex);
      else byLun.set(hex, n);
      seg.pending--;
    }
    const keep = list.filter((r) => !holders.has(uuidHex(r.holder)));
    if (keep.length === 0) this.recovered.delete(hex);
    else this.recovered.set(hex, keep);
    this.recycle();
    return gone.length;
  }

  /** Every record up to this sequence number is durable. */
  get durableThrough(): number {
    return this.writer.durableThrough;
  }

  /**
   * The durable records of a chunk placed since start and not yet retired, read back from
   * their segments and verified, in sequence order (a chunk evicted from RAM before its
   * upload). Records not yet durable are left out: they were placed with the chunk in RAM.
   */
  pendingRecords(lun: string, chunk: number): Promise<JournalRecord[]> {
    return this.pending.read(lun, chunk, this.durableThrough);
  }

  /** True when the chunk has records not yet in S3. */
  hasPending(lun: string, chunk: number): boolean {
    return this.pending.has(lun, chunk);
  }

  /** When the chunk's oldest record not yet in S3 was placed (clock ms). */
  pendingSince(lun: string, chunk: number): number | undefined {
    return this.pending.since(lun, chunk);
  }

  /** Chunks of a LUN with records not yet in S3, roughly oldest first. */
  pendingChunks(lun: string): IterableIterator<number> {
    return this.pending.chunks(lun);
  }

  /** The upload backlog: bytes of records placed since start and not yet in S3, and the oldest one's age. */
  backlog(): { readonly bytes: number; readonly oldestMs: number } {
    const b = this.pending.backlog();
    return { bytes: b.bytes, oldestMs: b.oldestAt === undefined ? 0 : this.o.clock.now() - b.oldestAt };
  }

  /**
   * Records that every earlier record of the LUN is in S3 (a LUN closed after its last upload,
   * whose replay has completed, or whose uploads caught up): a restart recovers nothing of it
   * from before this point. Skipped (false) if the LUN has records not yet in S3 when it would
   * be placed.
   */
  async checkpoint(lun: string, holder: string): Promise<boolean> {
    invariant(!this.recovered.has(uuidHex(lun)), () => `journal: checkpoint of LUN ${lun} before its replay`);
    if (!this.pending.clean(lun)) return false;
    const p = await this.place({ kind: 'checkpoint', lun, holder, chunk: 0, offset: 0, length: 0, data: Buffer.alloc(0) });
    await p.durable;
    return p.sequence > 0;
  }

  /** True when every record of the LUN placed since start is in S3. */
  isClean(lun: string): boolean {
    return this.pending.clean(lun);
  }

  /** The chunk's records up to `upTo` are in S3: their segments may go once nothing else in them is pending. */
  retire(lun: string, chunk: number, upTo: number): void {
    this.pending.retire(lun, chunk, upTo);
    this.recycle();
  }

  /**
   * Takes a LUN's recovered records over as pending records of the running journal instead of
   * replaying them (docs/journal.md, "Replay"): the LUN can serve at once, reads of those
   * chunks merge the records as for a chunk spilled from RAM, and the flusher uploads them
   * first (they count as due). Only a LUN whose lease chain vouches for them may (replay-policy.ts).
   */
  adoptRecovered(lun: string): number {
    const list = this.recovered.get(uuidHex(lun)) ?? [];
    const due = this.o.clock.now() - this.uploadDelayMs;
    for (const r of list) this.pending.add(lun, r.chunk, { seq: r.sequence, seg: r.seg, position: r.position, bytes: r.bytes, at: due });
    // The index counts them now: drop their recovered counts (the segments stay pending).
    this.retireRecovered(lun);
    return list.length;
  }

  /**
   * A LUN this process no longer holds (its lease was taken, docs/ha.md) leaves records that
   * are not in S3: they become recovered records, as if found at a restart, so that the next
   * look at the lease settles them (dropped when the new holder applied them, quarantined
   * otherwise) instead of pinning their segments, and every later one, until a restart.
   * Records placed but not yet durable were never acknowledged: they are dropped.
   */
  async abandon(lun: string): Promise<number> {
    const hex = uuidHex(lun);
    const taken = this.pending.take(lun);
    const durable = taken.filter((p) => p.seq <= this.durableThrough);
    for (const p of taken) {
      const seg = p.seg as Segment;
      seg.pending--;
      invariant(seg.pending >= 0, () => `journal segment ${seg.id}: pending count ${seg.pending}`);
    }
    const headers: RecoveredRecord[] = [];
    for (const p of durable) {
      const [r] = await readRecordsAt([p]);
      const { data: _data, ...header } = r;
      headers.push({ ...header, lun: hex, holder: uuidHex(r.holder), seg: p.seg, position: p.position, bytes: p.bytes });
      const seg = p.seg as Segment;
      seg.recovered ??= new Map();
      seg.recovered.set(hex, (seg.recovered.get(hex) ?? 0) + 1);
      seg.pending++;
    }
    const list = [...(this.recovered.get(hex) ?? []), ...headers].sort((a, b) => a.sequence - b.sequence);
    if (list.length > 0) this.recovered.set(hex, list);
    this.recycle();
    return headers.length;
  }

  /** Replay of a LUN's recovered records has made them durable in S3 (or the operator discarded them). */
  retireRecovered(lun: string): void {
    const hex = uuidHex(lun);
    for (const seg of this.segments) {
      const n = seg.recovered?.get(hex);
      if (n === undefined) continue;
      seg.recovered?.delete(hex);
      seg.pending -= n;
      invariant(seg.pending >= 0, () => `journal segment ${seg.id}: pending count ${seg.pending}`);
    }
    this.recovered.delete(hex);
    this.recycle();
  }

  private checkOpen(): void {
    const broken = this.writer.broken;
    if (broken) throw broken;
    if (this.closed) throw new StorageError('unavailable', 'the journal is closed', { code: 'STORE_ERR_CLOSED' });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.rotating;
    await this.writer.idle();
    await this.writer.close();
    await this.unlock();
  }

  // ------------------------------------------------------------------ segments

  private async startSegment(id: number, next: { sequence: number; group: number }): Promise<void> {
    const file = path.join(this.o.dir, segmentName(id));
    const fh = await fs.open(file, 'wx');
    await syncDir(this.o.dir);
    this.writer = new SegmentWriter(fh, 0, {
      clock: this.o.clock,
      sequence: next.sequence,
      group: next.group,
      maxGroupBytes: this.o.maxGroupBytes ?? 4 * 1024 * 1024,
      onCommit: this.o.onCommit,
      mirror: this.o.mirror,
    });
    this.segments.push({ id, file, bytes: 0, pending: 0 });
  }

  /** Closes the full segment once everything in it is durable, then opens the next. */
  private async rotate(full: Segment): Promise<void> {
    const old = this.writer;
    await old.idle();
    const broken = old.broken;
    if (broken) throw broken;
    await old.close();
    await this.startSegment(full.id + 1, old.next);
    this.recycle();
  }

  private recycle(): void {
    const current = this.segments[this.segments.length - 1];
    while (this.segments.length > 1 && this.segments[0] !== current && this.segments[0].pending === 0) {
      const seg = this.segments.shift() as Segment;
      fs.rm(seg.file, { force: true }).then(
        () => {
          this.used -= seg.bytes;
          invariant(this.used >= 0, () => `journal: ${this.used} bytes used`);
          this.spaceWaiters.wake();
        },
        (e: unknown) => log.error('journal: could not delete a segment whose records are all in S3', { file: seg.file, error: (e as Error).message }),
      );
    }
  }

  /** Waits until `len` more bytes fit, at most spaceTimeoutMs; then fails retryably. */
  private async room(len: number): Promise<void> {
    const deadline = this.o.clock.now() + this.o.spaceTimeoutMs;
    while (this.used + len > this.o.sizeBytes) {
      const left = deadline - this.o.clock.now();
      if (left <= 0) {
        throw new StorageError('unavailable', `the journal is full (${this.used} of ${this.o.sizeBytes} bytes not yet in S3)`, {
          code: 'STORE_ERR_JOURNAL_FULL',
        });
      }
      await this.spaceWaiters.wait(left);
    }
  }
}

function corrupt(file: string, scan: SegmentScan): StorageError {
  const d = scan.damage;
  const later = d?.laterGroup !== undefined ? `; commit group ${d.laterGroup} follows, so the damaged record had been acknowledged` : '';
  return new StorageError(
    'data',
    `journal segment ${file}: record at byte ${d?.offset ?? scan.end} does not verify (${d?.why ?? 'unknown'})${later}; ${scan.records.length} records before it are intact`,
    { code: 'STORE_ERR_JOURNAL_CORRUPT' },
  );
}

async function truncate(file: string, length: number): Promise<void> {
  const fh = await fs.open(file, 'r+');
  try {
    await fh.truncate(length);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
