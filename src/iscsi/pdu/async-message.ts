import { type Frame, newBhs, type OutFrame } from './frame';
import { Op, RESERVED_TAG } from './opcodes';

/** RFC 7143 §11.9.1: AsyncEvent codes. */
export const AsyncEvent = {
  ScsiAsyncEvent: 0,
  RequestLogout: 1,
  DropConnection: 2,
  DropAllConnections: 3,
  RequestNegotiation: 4,
} as const;

/** RFC 7143 §11.9: Asynchronous Message. */
export interface AsyncMessagePdu {
  readonly kind: 'async-message';
  readonly lun: bigint;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly event: number;
  readonly vcode: number;
  readonly param1: number;
  readonly param2: number;
  readonly param3: number;
  /** SenseLength-prefixed sense data for SCSI async events, else empty. */
  readonly data: Buffer;
}

export function encodeAsyncMessage(p: Omit<AsyncMessagePdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.AsyncMessage, 0x80, p.data.length);
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(RESERVED_TAG, 16);
  bhs.writeUInt32BE(p.statSN, 24);
  bhs.writeUInt32BE(p.expCmdSN, 28);
  bhs.writeUInt32BE(p.maxCmdSN, 32);
  bhs[36] = p.event;
  bhs[37] = p.vcode;
  bhs.writeUInt16BE(p.param1, 38);
  bhs.writeUInt16BE(p.param2, 40);
  bhs.writeUInt16BE(p.param3, 42);
  return { bhs, data: p.data };
}

export function decodeAsyncMessage(f: Frame): AsyncMessagePdu {
  const b = f.bhs;
  return {
    kind: 'async-message',
    lun: b.readBigUInt64BE(8),
    statSN: b.readUInt32BE(24),
    expCmdSN: b.readUInt32BE(28),
    maxCmdSN: b.readUInt32BE(32),
    event: b[36],
    vcode: b[37],
    param1: b.readUInt16BE(38),
    param2: b.readUInt16BE(40),
    param3: b.readUInt16BE(42),
    data: f.data,
  };
}
