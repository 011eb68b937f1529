import { crc32c } from '@node-rs/crc32';
import { type Parts, partsLength } from '../../util/parts';

/**
 * One journal record (issue 14; docs/journal.md is the reference): an 88-byte header and the
 * data it carries, all covered by one CRC32C. Little-endian; 64-bit fields are exact
 * integers (bigint on disk, checked to be safe integers when read).
 *
 *   off  size  field
 *     0     4  magic "S3TJ"
 *     4     2  version (1)
 *     6     2  kind (1 write, 2 discard, 3 checkpoint: every earlier record of the LUN is in S3)
 *     8     4  total length (header + data)
 *    12     4  CRC32C of the whole record, computed with this field zero
 *    16    16  LUN UUID
 *    32    16  lease holder: the id of the LUN lease acquisition it was written under
 *    48     8  sequence number (consecutive across the journal)
 *    56     8  commit group: records written by one write and made durable by one fsync
 *    64     4  index of the record in its group
 *    68     4  records in its group
 *    72     8  chunk index
 *    80     4  offset in the chunk
 *    84     4  length (write: of the data that follows; discard: of the discarded range)
 */
export const RECORD_MAGIC = 0x4a543353; // "S3TJ" read little-endian
export const RECORD_VERSION = 1;
export const HEADER_SIZE = 88;

export type RecordKind = 'write' | 'discard' | 'checkpoint';
const KIND_CODE: Readonly<Record<RecordKind, number>> = { write: 1, discard: 2, checkpoint: 3 };
const KIND_OF: ReadonlyMap<number, RecordKind> = new Map(Object.entries(KIND_CODE).map(([k, v]) => [v, k as RecordKind]));

export interface JournalRecord {
  readonly kind: RecordKind;
  /** A UUID (dashes optional; read back as 32 hex digits). */
  readonly lun: string;
  /** The lease holder id (a UUID) of the acquisition the record was written under. */
  readonly holder: string;
  readonly sequence: number;
  readonly group: number;
  readonly indexInGroup: number;
  readonly groupSize: number;
  readonly chunk: number;
  readonly offset: number;
  readonly length: number;
  /** write: the bytes (length of them); discard, checkpoint: empty. */
  readonly data: Buffer;
}

/** Why bytes at a position are not a record. */
export type Unreadable = 'short' | 'magic' | 'version' | 'kind' | 'length' | 'crc';

export function encodedLength(r: Pick<JournalRecord, 'kind' | 'length'>): number {
  return HEADER_SIZE + (r.kind === 'write' ? r.length : 0);
}

/** A record to encode: its data may be the buffers it arrived in (they are written as they are). */
export type EncodableRecord = Omit<JournalRecord, 'data'> & { readonly data: Buffer | Parts };

/** The header of a record, CRC included; the data is written after it as is (no copy). */
export function encodeHeader(r: EncodableRecord): Buffer {
  const dataLength = r.kind === 'write' ? r.length : 0;
  const parts: Parts = Buffer.isBuffer(r.data) ? [r.data] : r.data;
  if (partsLength(parts) !== dataLength) throw new RangeError(`journal record: ${partsLength(parts)} data bytes for a ${r.kind} of ${r.length}`);
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32LE(RECORD_MAGIC, 0);
  h.writeUInt16LE(RECORD_VERSION, 4);
  h.writeUInt16LE(KIND_CODE[r.kind], 6);
  h.writeUInt32LE(HEADER_SIZE + dataLength, 8);
  uuidBytes(r.lun).copy(h, 16);
  uuidBytes(r.holder).copy(h, 32);
  h.writeBigUInt64LE(BigInt(r.sequence), 48);
  h.writeBigUInt64LE(BigInt(r.group), 56);
  h.writeUInt32LE(r.indexInGroup, 64);
  h.writeUInt32LE(r.groupSize, 68);
  h.writeBigUInt64LE(BigInt(r.chunk), 72);
  h.writeUInt32LE(r.offset, 80);
  h.writeUInt32LE(r.length, 84);
  let crc = crc32c(h);
  for (const p of parts) crc = crc32c(p, crc);
  h.writeUInt32LE(crc >>> 0, 12);
  return h;
}

/**
 * Decodes the record at `pos` of `buf`, checking everything checkable: a record is either
 * returned whole and verified, or the reason it is not one.
 */
export function decodeRecord(buf: Buffer, pos: number): { record: JournalRecord; end: number } | { unreadable: Unreadable } {
  if (buf.length - pos < HEADER_SIZE) return { unreadable: 'short' };
  if (buf.readUInt32LE(pos) !== RECORD_MAGIC) return { unreadable: 'magic' };
  if (buf.readUInt16LE(pos + 4) !== RECORD_VERSION) return { unreadable: 'version' };
  const kind = KIND_OF.get(buf.readUInt16LE(pos + 6));
  if (kind === undefined) return { unreadable: 'kind' };
  const total = buf.readUInt32LE(pos + 8);
  const length = buf.readUInt32LE(pos + 84);
  if (total !== HEADER_SIZE + (kind === 'write' ? length : 0)) return { unreadable: 'length' };
  if (buf.length - pos < total) return { unreadable: 'short' };
  const header = Buffer.from(buf.subarray(pos, pos + HEADER_SIZE));
  const stored = header.readUInt32LE(12);
  header.writeUInt32LE(0, 12);
  const data = buf.subarray(pos + HEADER_SIZE, pos + total);
  if (crc32c(data, crc32c(header)) >>> 0 !== stored) return { unreadable: 'crc' };
  const u64 = (at: number): number => {
    const v = buf.readBigUInt64LE(pos + at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`journal record: a 64-bit field at +${at} is beyond 2^53`);
    return Number(v);
  };
  const record: JournalRecord = {
    kind,
    lun: buf.subarray(pos + 16, pos + 32).toString('hex'),
    holder: buf.subarray(pos + 32, pos + 48).toString('hex'),
    sequence: u64(48),
    group: u64(56),
    indexInGroup: buf.readUInt32LE(pos + 64),
    groupSize: buf.readUInt32LE(pos + 68),
    chunk: u64(72),
    offset: buf.readUInt32LE(pos + 80),
    length,
    data,
  };
  return { record, end: pos + total };
}

/** A UUID as 32 hex digits (how records read back), whatever dashes it was written with. */
export function uuidHex(uuid: string): string {
  return uuid.replaceAll('-', '').toLowerCase();
}

function uuidBytes(uuid: string): Buffer {
  const hex = uuidHex(uuid);
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new RangeError(`journal record: ${JSON.stringify(uuid)} is not a UUID (16 bytes of hex)`);
  return Buffer.from(hex, 'hex');
}
