import { type Frame, newBhs, type OutFrame } from './frame';
import { Op } from './opcodes';

/** RFC 7143 §11.8: Ready To Transfer. */
export interface R2TPdu {
  readonly kind: 'r2t';
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly r2tSN: number;
  readonly bufferOffset: number;
  readonly desiredLength: number;
}

export function encodeR2T(p: Omit<R2TPdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.R2T, 0x80, 0);
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.ttt, 20);
  bhs.writeUInt32BE(p.statSN, 24);
  bhs.writeUInt32BE(p.expCmdSN, 28);
  bhs.writeUInt32BE(p.maxCmdSN, 32);
  bhs.writeUInt32BE(p.r2tSN, 36);
  bhs.writeUInt32BE(p.bufferOffset, 40);
  bhs.writeUInt32BE(p.desiredLength, 44);
  return { bhs };
}

export function decodeR2T(f: Frame): R2TPdu {
  const b = f.bhs;
  return {
    kind: 'r2t',
    lun: b.readBigUInt64BE(8),
    itt: b.readUInt32BE(16),
    ttt: b.readUInt32BE(20),
    statSN: b.readUInt32BE(24),
    expCmdSN: b.readUInt32BE(28),
    maxCmdSN: b.readUInt32BE(32),
    r2tSN: b.readUInt32BE(36),
    bufferOffset: b.readUInt32BE(40),
    desiredLength: b.readUInt32BE(44),
  };
}
