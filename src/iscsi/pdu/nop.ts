import { type Frame, immediateOf, newBhs, type OutFrame } from './frame';
import { Op } from './opcodes';

/** RFC 7143 §11.18: NOP-Out. */
export interface NopOutPdu {
  readonly kind: 'nop-out';
  readonly immediate: boolean;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  /** Ping data, echoed back. */
  readonly data: Buffer;
}

export function decodeNopOut(f: Frame): NopOutPdu {
  const b = f.bhs;
  return {
    kind: 'nop-out',
    immediate: immediateOf(b),
    lun: b.readBigUInt64BE(8),
    itt: b.readUInt32BE(16),
    ttt: b.readUInt32BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
    data: f.data,
  };
}

export function encodeNopOut(p: Omit<NopOutPdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.NopOut, 0x80, p.data.length, p.immediate);
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.ttt, 20);
  bhs.writeUInt32BE(p.cmdSN, 24);
  bhs.writeUInt32BE(p.expStatSN, 28);
  return { bhs, data: p.data };
}

/** RFC 7143 §11.19: NOP-In. */
export interface NopInPdu {
  readonly kind: 'nop-in';
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly data: Buffer;
}

export function encodeNopIn(p: Omit<NopInPdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.NopIn, 0x80, p.data.length);
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.ttt, 20);
  bhs.writeUInt32BE(p.statSN, 24);
  bhs.writeUInt32BE(p.expCmdSN, 28);
  bhs.writeUInt32BE(p.maxCmdSN, 32);
  return { bhs, data: p.data };
}

export function decodeNopIn(f: Frame): NopInPdu {
  const b = f.bhs;
  return {
    kind: 'nop-in',
    lun: b.readBigUInt64BE(8),
    itt: b.readUInt32BE(16),
    ttt: b.readUInt32BE(20),
    statSN: b.readUInt32BE(24),
    expCmdSN: b.readUInt32BE(28),
    maxCmdSN: b.readUInt32BE(32),
    data: f.data,
  };
}
