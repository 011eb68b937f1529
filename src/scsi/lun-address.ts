/**
 * SAM-5 §4.7: the 8-byte LUN field. We use peripheral device addressing (method 00b) for LUNs
 * below 256 and flat space addressing (01b) up to 16383, like Linux and LIO.
 */
export const MAX_LUN = 16383;

export function encodeLun(lun: number): bigint {
  if (lun < 0 || lun > MAX_LUN) throw new RangeError(`LUN ${lun} out of range`);
  if (lun < 256) return BigInt(lun) << 48n;
  return BigInt(0x4000 | lun) << 48n;
}

/** The LUN number, or undefined for addressing methods or extra levels we do not serve. */
export function decodeLun(raw: bigint): number | undefined {
  const first = Number((raw >> 48n) & 0xffffn);
  if ((raw & 0xffffffffffffn) !== 0n) return undefined; // second-level addressing
  const method = first >> 14;
  if (method === 0) return first >> 8 === 0 ? first & 0xff : undefined; // bus 0 only
  if (method === 1) return first & 0x3fff;
  return undefined;
}
