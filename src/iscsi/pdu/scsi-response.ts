import type { Frame, OutFrame } from './frame';
import { newBhs } from './frame';
import { Op } from './opcodes';

/** RFC 7143 §11.4.1: Response codes. */
export const ServiceResponse = { CommandCompleted: 0x00, TargetFailure: 0x01 } as const;

/** Residual as carried by SCSI Response and the final Data-In (RFC 7143 §11.4.5). */
export interface Residual {
  readonly overflow: boolean;
  readonly underflow: boolean;
  readonly count: number;
}
export const NO_RESIDUAL: Residual = { overflow: false, underflow: false, count: 0 };

/** RFC 7143 §11.4: SCSI Response. */
export interface ScsiResponsePdu {
  readonly kind: 'scsi-response';
  readonly response: number;
  readonly status: number;
  readonly itt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly expDataSN: number;
  readonly residual: Residual;
  /** Sense data without the 2-byte SenseLength prefix (RFC 7143 §11.4.7.2). */
  readonly sense: Buffer;
}

export function encodeScsiResponse(p: Omit<ScsiResponsePdu, 'kind'>): OutFrame {
  let data: Buffer | undefined;
  if (p.sense.length > 0) {
    data = Buffer.allocUnsafe(2 + p.sense.length);
    data.writeUInt16BE(p.sense.length, 0);
    p.sense.copy(data, 2);
  }
  const flags = 0x80 | (p.residual.overflow ? 0x04 : 0) | (p.residual.underflow ? 0x02 : 0);
  const bhs = newBhs(Op.ScsiResponse, flags, data?.length ?? 0);
  bhs[2] = p.response;
  bhs[3] = p.status;
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.statSN, 24);
  bhs.writeUInt32BE(p.expCmdSN, 28);
  bhs.writeUInt32BE(p.maxCmdSN, 32);
  bhs.writeUInt32BE(p.expDataSN, 36);
  bhs.writeUInt32BE(p.residual.count, 44);
  return data ? { bhs, data } : { bhs };
}

export function decodeScsiResponse(f: Frame): ScsiResponsePdu {
  const b = f.bhs;
  const senseLength = f.data.length >= 2 ? f.data.readUInt16BE(0) : 0;
  return {
    kind: 'scsi-response',
    response: b[2],
    status: b[3],
    itt: b.readUInt32BE(16),
    statSN: b.readUInt32BE(24),
    expCmdSN: b.readUInt32BE(28),
    maxCmdSN: b.readUInt32BE(32),
    expDataSN: b.readUInt32BE(36),
    residual: { overflow: (b[1] & 0x04) !== 0, underflow: (b[1] & 0x02) !== 0, count: b.readUInt32BE(44) },
    sense: f.data.subarray(2, 2 + Math.min(senseLength, Math.max(0, f.data.length - 2))),
  };
}
