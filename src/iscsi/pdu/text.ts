import { type Frame, immediateOf, newBhs, type OutFrame } from './frame';
import { Op } from './opcodes';

/** RFC 7143 §11.10: Text Request. */
export interface TextRequestPdu {
  readonly kind: 'text-request';
  readonly immediate: boolean;
  readonly final: boolean;
  readonly cont: boolean;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export function decodeTextRequest(f: Frame): TextRequestPdu {
  const b = f.bhs;
  return {
    kind: 'text-request',
    immediate: immediateOf(b),
    final: (b[1] & 0x80) !== 0,
    cont: (b[1] & 0x40) !== 0,
    lun: b.readBigUInt64BE(8),
    itt: b.readUInt32BE(16),
    ttt: b.readUInt32BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
    data: f.data,
  };
}

export function encodeTextRequest(p: Omit<TextRequestPdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.TextRequest, (p.final ? 0x80 : 0) | (p.cont ? 0x40 : 0), p.data.length, p.immediate);
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.ttt, 20);
  bhs.writeUInt32BE(p.cmdSN, 24);
  bhs.writeUInt32BE(p.expStatSN, 28);
  return { bhs, data: p.data };
}

/** RFC 7143 §11.11: Text Response. */
export interface TextResponsePdu {
  readonly kind: 'text-response';
  readonly final: boolean;
  readonly cont: boolean;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly data: Buffer;
}

export function encodeTextResponse(p: Omit<TextResponsePdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.TextResponse, (p.final ? 0x80 : 0) | (p.cont ? 0x40 : 0), p.data.length);
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.ttt, 20);
  bhs.writeUInt32BE(p.statSN, 24);
  bhs.writeUInt32BE(p.expCmdSN, 28);
  bhs.writeUInt32BE(p.maxCmdSN, 32);
  return { bhs, data: p.data };
}

export function decodeTextResponse(f: Frame): TextResponsePdu {
  const b = f.bhs;
  return {
    kind: 'text-response',
    final: (b[1] & 0x80) !== 0,
    cont: (b[1] & 0x40) !== 0,
    lun: b.readBigUInt64BE(8),
    itt: b.readUInt32BE(16),
    ttt: b.readUInt32BE(20),
    statSN: b.readUInt32BE(24),
    expCmdSN: b.readUInt32BE(28),
    maxCmdSN: b.readUInt32BE(32),
    data: f.data,
  };
}
