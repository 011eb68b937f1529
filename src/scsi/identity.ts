/** What INQUIRY and VPD pages say about a logical unit (SPC-5 §6.7). */
export interface LuIdentity {
  /** T10 VENDOR IDENTIFICATION, 8 ASCII characters. */
  readonly vendor: string;
  /** PRODUCT IDENTIFICATION, 16 ASCII characters. */
  readonly product: string;
  /** PRODUCT REVISION LEVEL, 4 ASCII characters. */
  readonly revision: string;
  /** The per-LUN UUID kept in the store; every designator derives from it. */
  readonly uuid: string;
}

export const DEFAULT_VENDOR = 'S3TGT';
export const DEFAULT_PRODUCT = 's3tgt disk';
export const PRODUCT_REVISION = '0001';

/** Left-aligned, space-padded ASCII (SPC-5 §4.3.1). */
export function asciiField(s: string, len: number): Buffer {
  const b = Buffer.alloc(len, 0x20);
  b.write(s.replace(/[^\x20-\x7e]/g, '?').slice(0, len), 'ascii');
  return b;
}

/** Unit serial number (VPD 80h): the UUID's hex digits, unique per LUN. */
export function serialOf(uuid: string): string {
  return uuid.replace(/-/g, '');
}
