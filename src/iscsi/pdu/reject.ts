import { BHS_LENGTH, type Frame, newBhs, type OutFrame } from './frame';
import { Op, RESERVED_TAG } from './opcodes';

/** RFC 7143 §11.17: Reject. The data segment is the header of the rejected PDU. */
export interface RejectPdu {
  readonly kind: 'reject';
  readonly reason: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly dataSN: number;
  readonly rejectedHeader: Buffer;
}

export function encodeReject(p: Omit<RejectPdu, 'kind'>): OutFrame {
  const data = Buffer.alloc(BHS_LENGTH);
  p.rejectedHeader.copy(data, 0, 0, Math.min(BHS_LENGTH, p.rejectedHeader.length));
  const bhs = newBhs(Op.Reject, 0x80, data.length);
  bhs[2] = p.reason;
  bhs.writeUInt32BE(RESERVED_TAG, 16);
  bhs.writeUInt32BE(p.statSN, 24);
  bhs.writeUInt32BE(p.expCmdSN, 28);
  bhs.writeUInt32BE(p.maxCmdSN, 32);
  bhs.writeUInt32BE(p.dataSN, 36);
  return { bhs, data };
}

export function decodeReject(f: Frame): RejectPdu {
  const b = f.bhs;
  return {
    kind: 'reject',
    reason: b[2],
    statSN: b.readUInt32BE(24),
    expCmdSN: b.readUInt32BE(28),
    maxCmdSN: b.readUInt32BE(32),
    dataSN: b.readUInt32BE(36),
    rejectedHeader: f.data,
  };
}
