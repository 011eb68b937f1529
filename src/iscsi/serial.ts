/**
 * RFC 1982 serial number arithmetic on 32-bit sequence numbers (CmdSN, StatSN, DataSN), as
 * RFC 7143 §4.2.2.1 requires for every comparison of them.
 */
export const sn = {
  add(a: number, n: number): number {
    return (a + n) >>> 0;
  },
  /** a < b in serial arithmetic. */
  lt(a: number, b: number): boolean {
    return a !== b && (b - a) >>> 0 < 0x80000000;
  },
  lte(a: number, b: number): boolean {
    return a === b || sn.lt(a, b);
  },
  /** b - a, meaningful when a <= b. */
  diff(a: number, b: number): number {
    return (b - a) >>> 0;
  },
};
