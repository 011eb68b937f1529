import { type Frame, newBhs, type OutFrame } from './frame';
import { Op, RESERVED_TAG } from './opcodes';
import type { Residual } from './scsi-response';

/** RFC 7143 §11.7: SCSI Data-In. When `status` is set the S bit carries the command status. */
export interface DataInPdu {
  readonly kind: 'data-in';
  readonly final: boolean;
  readonly lun: bigint;
  readonly itt: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  /** Present only on the last Data-In of a command when status is collapsed into it. */
  readonly status?: { readonly status: number; readonly statSN: number; readonly residual: Residual };
  readonly data: Buffer;
}

/**
 * Writes a Data-In header. The hot read path calls this once per PDU, so it fills a BHS
 * directly instead of going through an intermediate object.
 */
export function encodeDataIn(p: Omit<DataInPdu, 'kind'>): OutFrame {
  const st = p.status;
  let flags = p.final || st ? 0x80 : 0;
  if (st) flags |= 0x01 | (st.residual.overflow ? 0x04 : 0) | (st.residual.underflow ? 0x02 : 0);
  const bhs = newBhs(Op.DataIn, flags, p.data.length);
  if (st) bhs[3] = st.status;
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(RESERVED_TAG, 20);
  if (st) bhs.writeUInt32BE(st.statSN, 24);
  bhs.writeUInt32BE(p.expCmdSN, 28);
  bhs.writeUInt32BE(p.maxCmdSN, 32);
  bhs.writeUInt32BE(p.dataSN, 36);
  bhs.writeUInt32BE(p.bufferOffset, 40);
  if (st) bhs.writeUInt32BE(st.residual.count, 44);
  return { bhs, data: p.data };
}

export function decodeDataIn(f: Frame): DataInPdu {
  const b = f.bhs;
  const hasStatus = (b[1] & 0x01) !== 0;
  return {
    kind: 'data-in',
    final: (b[1] & 0x80) !== 0,
    lun: b.readBigUInt64BE(8),
    itt: b.readUInt32BE(16),
    dataSN: b.readUInt32BE(36),
    bufferOffset: b.readUInt32BE(40),
    expCmdSN: b.readUInt32BE(28),
    maxCmdSN: b.readUInt32BE(32),
    ...(hasStatus
      ? {
          status: {
            status: b[3],
            statSN: b.readUInt32BE(24),
            residual: { overflow: (b[1] & 0x04) !== 0, underflow: (b[1] & 0x02) !== 0, count: b.readUInt32BE(44) },
          },
        }
      : {}),
    data: f.data,
  };
}
