import { PduError } from '../errors';

/** RFC 7143 §11.2: every PDU starts with a 48-byte Basic Header Segment. */
export const BHS_LENGTH = 48;

/**
 * One whole PDU as it came off (or goes onto) the wire, digests already checked or not yet
 * computed. `ahs` and `data` are views into the receive buffer, without padding.
 */
export interface Frame {
  readonly bhs: Buffer;
  readonly ahs: Buffer;
  readonly data: Buffer;
}

/** An outbound PDU: the BHS and an unpadded data segment; the writer adds padding and digests. */
export interface OutFrame {
  readonly bhs: Buffer;
  readonly data?: Buffer;
}

export const opcodeOf = (bhs: Buffer): number => bhs[0] & 0x3f;
export const immediateOf = (bhs: Buffer): boolean => (bhs[0] & 0x40) !== 0;
/** RFC 7143 §11.2.1.3: TotalAHSLength counts 4-byte words. */
export const ahsLengthOf = (bhs: Buffer): number => bhs[4] * 4;
/** RFC 7143 §11.2.1.4: DataSegmentLength is 24 bits, excludes padding. */
export const dataLengthOf = (bhs: Buffer): number => (bhs[5] << 16) | (bhs[6] << 8) | bhs[7];
export const ittOf = (bhs: Buffer): number => bhs.readUInt32BE(16);
export const pad4 = (n: number): number => (n + 3) & ~3;

/** Starts a BHS: opcode (+ immediate bit), flags byte and DataSegmentLength. */
export function newBhs(opcode: number, flags: number, dataLength: number, immediate = false): Buffer {
  const bhs = Buffer.alloc(BHS_LENGTH);
  bhs[0] = (opcode & 0x3f) | (immediate ? 0x40 : 0);
  bhs[1] = flags;
  setDataLength(bhs, dataLength);
  return bhs;
}

export function setDataLength(bhs: Buffer, n: number): void {
  if (n < 0 || n > 0xffffff) throw new RangeError(`data segment length ${n} out of range`);
  bhs[5] = (n >>> 16) & 0xff;
  bhs[6] = (n >>> 8) & 0xff;
  bhs[7] = n & 0xff;
}

/** Fails with a typed error when a PDU kind that must not carry data does. */
export function expectNoData(frame: Frame, what: string): void {
  if (frame.data.length !== 0) {
    throw new PduError('ISCSI_ERR_UNEXPECTED_DATA', `${what} must not carry a data segment`);
  }
}
