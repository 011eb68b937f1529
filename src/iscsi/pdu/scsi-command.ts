import { PduError, RejectReason } from '../errors';
import { dataLengthOf, type Frame, immediateOf, newBhs, type OutFrame } from './frame';
import { Op } from './opcodes';

/** SAM task attributes as coded in the ATTR field (RFC 7143 §11.3.1.3). */
export const TaskAttr = { Untagged: 0, Simple: 1, Ordered: 2, HeadOfQueue: 3, Aca: 4 } as const;
export type TaskAttr = (typeof TaskAttr)[keyof typeof TaskAttr];

/** AHS types (RFC 7143 §11.2.2.1). */
const AHS_EXTENDED_CDB = 1;
const AHS_BIDI_READ_LENGTH = 2;

/** RFC 7143 §11.3: SCSI Command. */
export interface ScsiCommandPdu {
  readonly kind: 'scsi-command';
  readonly immediate: boolean;
  /** F: no unsolicited Data-Out follows. */
  readonly final: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly attr: number;
  readonly lun: bigint;
  readonly itt: number;
  readonly expectedDataLength: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  /** The whole CDB: the 16 bytes of the BHS plus any Extended CDB AHS. */
  readonly cdb: Buffer;
  readonly bidiReadLength?: number;
  /** Immediate data. */
  readonly data: Buffer;
}

export function decodeScsiCommand(f: Frame): ScsiCommandPdu {
  const b = f.bhs;
  let cdb = b.subarray(32, 48);
  let bidiReadLength: number | undefined;
  // RFC 7143 §11.2.2: each AHS is AHSLength(2) AHSType(1) specific(1) + data, padded to 4.
  let off = 0;
  while (off < f.ahs.length) {
    if (off + 4 > f.ahs.length) throw new PduError('ISCSI_ERR_AHS', 'truncated AHS header', RejectReason.InvalidPduField);
    const len = f.ahs.readUInt16BE(off);
    const type = f.ahs[off + 2] & 0x3f;
    const end = off + 3 + len;
    if (end > f.ahs.length) throw new PduError('ISCSI_ERR_AHS', 'AHS longer than TotalAHSLength', RejectReason.InvalidPduField);
    if (type === AHS_EXTENDED_CDB) {
      // §11.3.5: AHSLength counts the reserved byte plus the CDB bytes beyond 16.
      cdb = Buffer.concat([cdb, f.ahs.subarray(off + 4, end)]);
    } else if (type === AHS_BIDI_READ_LENGTH) {
      if (len !== 5) throw new PduError('ISCSI_ERR_AHS', 'bad bidirectional read length AHS', RejectReason.InvalidPduField);
      bidiReadLength = f.ahs.readUInt32BE(off + 4);
    } else {
      throw new PduError('ISCSI_ERR_AHS', `unknown AHS type ${type}`, RejectReason.InvalidPduField);
    }
    off += (3 + len + 3) & ~3;
  }
  return {
    kind: 'scsi-command',
    immediate: immediateOf(b),
    final: (b[1] & 0x80) !== 0,
    read: (b[1] & 0x40) !== 0,
    write: (b[1] & 0x20) !== 0,
    attr: b[1] & 0x07,
    lun: b.readBigUInt64BE(8),
    itt: b.readUInt32BE(16),
    expectedDataLength: b.readUInt32BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
    cdb,
    ...(bidiReadLength !== undefined ? { bidiReadLength } : {}),
    data: f.data,
  };
}

/** Encoder (used by tests and the test initiator); CDBs longer than 16 bytes are not emitted. */
export function encodeScsiCommand(p: Omit<ScsiCommandPdu, 'kind'>): OutFrame {
  const flags = (p.final ? 0x80 : 0) | (p.read ? 0x40 : 0) | (p.write ? 0x20 : 0) | (p.attr & 7);
  const bhs = newBhs(Op.ScsiCommand, flags, p.data.length, p.immediate);
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.expectedDataLength, 20);
  bhs.writeUInt32BE(p.cmdSN, 24);
  bhs.writeUInt32BE(p.expStatSN, 28);
  p.cdb.copy(bhs, 32, 0, Math.min(16, p.cdb.length));
  return { bhs, data: p.data };
}

export const scsiCommandDataLength = dataLengthOf;
