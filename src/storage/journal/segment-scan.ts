import { decodeRecord, type JournalRecord, RECORD_MAGIC, type Unreadable } from './record';

/**
 * What a journal segment file holds, read back at start-up. Records are appended in commit
 * groups: one write of every record of a group, then one fsync, then the acknowledgements;
 * the next group is written only after that. So a crash can leave only the LAST group
 * partly written (a torn tail: nothing of it was acknowledged), and damage followed by a
 * record of a later group is damage to an acknowledged record (corruption): replay must stop
 * there with a report, never skip it.
 */
export interface SegmentScan {
  /** Every verified record before the end or the damage, in file order. */
  readonly records: readonly JournalRecord[];
  /** Where each of `records` starts in the file. */
  readonly starts: readonly number[];
  /** Where the verified records end: the append position once a torn tail is cut off. */
  readonly end: number;
  readonly tail: 'clean' | 'torn' | 'corrupt';
  /** Where reading stopped and why, when the tail is not clean. */
  readonly damage?: Damage;
}

export interface Damage {
  readonly offset: number;
  readonly why: Unreadable;
  /** The first verified record after the damage, if any. */
  readonly next?: { readonly offset: number; readonly sequence: number; readonly group: number };
  /** corrupt: the later commit group whose presence proves the damaged one was acknowledged. */
  readonly laterGroup?: number;
}

const MAGIC = Buffer.alloc(4);
MAGIC.writeUInt32LE(RECORD_MAGIC, 0);

export function scanSegment(buf: Buffer): SegmentScan {
  const records: JournalRecord[] = [];
  const starts: number[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const r = decodeRecord(buf, pos);
    if ('unreadable' in r) return damaged(buf, records, starts, pos, r.unreadable);
    records.push(r.record);
    starts.push(pos);
    pos = r.end;
  }
  return { records, starts, end: pos, tail: 'clean' };
}

function damaged(buf: Buffer, records: JournalRecord[], starts: number[], at: number, why: Unreadable): SegmentScan {
  const last = records.at(-1);
  // A record's data may itself contain bytes that verify as a record (a guest that stores a
  // journal on its disk): only records that continue the sequence count.
  const later = laterRecords(buf, at + 1).filter((l) => !last || l.record.sequence > last.sequence);
  // The group the damaged bytes belong to: the last verified record's, unless that record
  // closed its group; with nothing before, the group of the first record after.
  const open = last ? (last.indexInGroup + 1 === last.groupSize ? last.group + 1 : last.group) : later[0]?.record.group;
  const proof = later.find((l) => open !== undefined && l.record.group > open);
  const first = later[0];
  const damage: Damage = {
    offset: at,
    why,
    ...(first ? { next: { offset: first.offset, sequence: first.record.sequence, group: first.record.group } } : {}),
    ...(proof ? { laterGroup: proof.record.group } : {}),
  };
  return { records, starts, end: at, tail: proof ? 'corrupt' : 'torn', damage };
}

/** Every verified record that starts at or after `from` (a search for the magic, then a full check). */
function laterRecords(buf: Buffer, from: number): Array<{ offset: number; record: JournalRecord }> {
  const out: Array<{ offset: number; record: JournalRecord }> = [];
  for (let at = buf.indexOf(MAGIC, from); at >= 0; ) {
    const r = decodeRecord(buf, at);
    if ('record' in r) {
      out.push({ offset: at, record: r.record });
      at = buf.indexOf(MAGIC, r.end);
    } else {
      at = buf.indexOf(MAGIC, at + 1);
    }
  }
  return out;
}
