import * as fs from 'node:fs/promises';
import { invariant } from '../../util/invariant';
import { StorageError } from '../errors';
import { decodeRecord, type JournalRecord, uuidHex } from './record';

/** What a pending record needs of its segment: where it is, and a count to keep. */
export interface SegmentRef {
  readonly id: number;
  readonly file: string;
  /** Records in the segment not yet in S3. */
  pending: number;
}

/** A record placed since start and not yet in S3: where to read it back (a chunk evicted from RAM). */
interface PendingRecord {
  readonly seq: number;
  readonly seg: SegmentRef;
  readonly position: number;
  readonly bytes: number;
  /** When it was placed (clock ms). */
  readonly at: number;
}

/**
 * The journal's index of records not yet in S3, by LUN (32 hex digits) and chunk, in sequence
 * order. It keeps each segment's pending count (segments go once it is 0), tells which chunks
 * hold data that is only in the journal, and reads their records back.
 */
export class PendingIndex {
  private readonly byLun = new Map<string, Map<number, PendingRecord[]>>();

  add(lun: string, chunk: number, r: PendingRecord): void {
    const hex = uuidHex(lun);
    let chunks = this.byLun.get(hex);
    if (!chunks) {
      chunks = new Map();
      this.byLun.set(hex, chunks);
    }
    const list = chunks.get(chunk) ?? [];
    list.push(r);
    chunks.set(chunk, list);
    r.seg.pending++;
  }

  /** Drops the chunk's records up to `upTo` (they are in S3). */
  retire(lun: string, chunk: number, upTo: number): void {
    const chunks = this.byLun.get(uuidHex(lun));
    const list = chunks?.get(chunk);
    if (!chunks || !list) return;
    while (list.length > 0 && list[0].seq <= upTo) {
      const { seg } = list.shift() as PendingRecord;
      seg.pending--;
      invariant(seg.pending >= 0, () => `journal segment ${seg.id}: pending count ${seg.pending}`);
    }
    if (list.length === 0) chunks.delete(chunk);
  }

  has(lun: string, chunk: number): boolean {
    return this.byLun.get(uuidHex(lun))?.has(chunk) ?? false;
  }

  /** True when the LUN has no record that is not in S3. */
  clean(lun: string): boolean {
    return (this.byLun.get(uuidHex(lun))?.size ?? 0) === 0;
  }

  /** When the chunk's oldest record not yet in S3 was placed (clock ms). */
  since(lun: string, chunk: number): number | undefined {
    return this.byLun.get(uuidHex(lun))?.get(chunk)?.[0]?.at;
  }

  /** Chunks of a LUN with records not yet in S3, roughly oldest first. */
  chunks(lun: string): IterableIterator<number> {
    return (this.byLun.get(uuidHex(lun)) ?? new Map<number, PendingRecord[]>()).keys();
  }

  /** Bytes of records not yet in S3, and when the oldest of them was placed. */
  backlog(): { readonly bytes: number; readonly oldestAt: number | undefined } {
    let bytes = 0;
    let oldestAt: number | undefined;
    for (const chunks of this.byLun.values()) {
      for (const list of chunks.values()) {
        for (const p of list) bytes += p.bytes;
        if (list.length > 0 && (oldestAt === undefined || list[0].at < oldestAt)) oldestAt = list[0].at;
      }
    }
    return { bytes, oldestAt };
  }

  /** The lowest sequence number of a record not yet in S3 (undefined: none). */
  oldest(): number | undefined {
    let min: number | undefined;
    for (const chunks of this.byLun.values()) {
      for (const list of chunks.values()) if (list.length > 0 && (min === undefined || list[0].seq < min)) min = list[0].seq;
    }
    return min;
  }

  /**
   * Removes every record of a LUN from the index and returns them, in sequence order; their
   * segments' pending counts are left as they are (the caller accounts for them).
   */
  take(lun: string): Array<{ readonly seq: number; readonly seg: SegmentRef; readonly position: number; readonly bytes: number }> {
    const hex = uuidHex(lun);
    const chunks = this.byLun.get(hex);
    this.byLun.delete(hex);
    return [...(chunks?.values() ?? [])].flat().sort((a, b) => a.seq - b.seq);
  }

  /** The chunk's records up to `upTo` (the durable ones), read back and verified, in sequence order. */
  read(lun: string, chunk: number, upTo: number): Promise<JournalRecord[]> {
    return readRecordsAt((this.byLun.get(uuidHex(lun))?.get(chunk) ?? []).filter((p) => p.seq <= upTo));
  }
}

/**
 * Records read back from their segments at known places, verified (CRC, sequence), in the order
 * given. `held`: files already open (a replica file may be deleted meanwhile, its handle still
 * reads it); they stay open.
 */
export async function readRecordsAt(
  places: ReadonlyArray<
    { readonly seg: { readonly file: string }; readonly position: number; readonly bytes: number } & (
      | { readonly seq: number }
      | { readonly sequence: number }
    )
  >,
  held?: ReadonlyMap<string, fs.FileHandle>,
): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  const files = new Map<string, fs.FileHandle>();
  try {
    for (const p of places) {
      const seq = 'seq' in p ? p.seq : p.sequence;
      let fh = held?.get(p.seg.file) ?? files.get(p.seg.file);
      if (!fh) {
        fh = await fs.open(p.seg.file, 'r');
        files.set(p.seg.file, fh);
      }
      const buf = Buffer.allocUnsafe(p.bytes);
      const { bytesRead } = await fh.read(buf, 0, p.bytes, p.position);
      const d = decodeRecord(buf.subarray(0, bytesRead), 0);
      if ('unreadable' in d || d.record.sequence !== seq) {
        const why = 'unreadable' in d ? d.unreadable : 'wrong sequence';
        throw new StorageError('data', `journal segment ${p.seg.file}: record ${seq} at byte ${p.position} does not read back (${why})`, {
          code: 'STORE_ERR_JOURNAL_CORRUPT',
        });
      }
      out.push(d.record);
    }
  } finally {
    for (const fh of files.values()) await fh.close();
  }
  return out;
}
