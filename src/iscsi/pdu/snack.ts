import { type Frame, newBhs, type OutFrame } from './frame';
import { Op } from './opcodes';

/** RFC 7143 §11.16: SNACK Request (only meaningful at ErrorRecoveryLevel > 0). */
export interface SnackRequestPdu {
  readonly kind: 'snack-request';
  readonly type: number;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly expStatSN: number;
  readonly begRun: number;
  readonly runLength: number;
}

export function decodeSnackRequest(f: Frame): SnackRequestPdu {
  const b = f.bhs;
  return {
    kind: 'snack-request',
    type: b[1] & 0x0f,
    lun: b.readBigUInt64BE(8),
    itt: b.readUInt32BE(16),
    ttt: b.readUInt32BE(20),
    expStatSN: b.readUInt32BE(28),
    begRun: b.readUInt32BE(40),
    runLength: b.readUInt32BE(44),
  };
}

export function encodeSnackRequest(p: Omit<SnackRequestPdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.SnackRequest, 0x80 | (p.type & 0x0f), 0);
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.ttt, 20);
  bhs.writeUInt32BE(p.expStatSN, 28);
  bhs.writeUInt32BE(p.begRun, 40);
  bhs.writeUInt32BE(p.runLength, 44);
  return { bhs };
}
