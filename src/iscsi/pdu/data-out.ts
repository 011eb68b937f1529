import { type Frame, newBhs, type OutFrame } from './frame';
import { Op } from './opcodes';

/** RFC 7143 §11.7: SCSI Data-Out. */
export interface DataOutPdu {
  readonly kind: 'data-out';
  readonly final: boolean;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly expStatSN: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
  readonly data: Buffer;
}

export function decodeDataOut(f: Frame): DataOutPdu {
  const b = f.bhs;
  return {
    kind: 'data-out',
    final: (b[1] & 0x80) !== 0,
    lun: b.readBigUInt64BE(8),
    itt: b.readUInt32BE(16),
    ttt: b.readUInt32BE(20),
    expStatSN: b.readUInt32BE(28),
    dataSN: b.readUInt32BE(36),
    bufferOffset: b.readUInt32BE(40),
    data: f.data,
  };
}

export function encodeDataOut(p: Omit<DataOutPdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.DataOut, p.final ? 0x80 : 0, p.data.length);
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.ttt, 20);
  bhs.writeUInt32BE(p.expStatSN, 28);
  bhs.writeUInt32BE(p.dataSN, 36);
  bhs.writeUInt32BE(p.bufferOffset, 40);
  return { bhs, data: p.data };
}
