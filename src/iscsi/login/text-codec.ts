import { PduError, RejectReason } from '../errors';

/** RFC 7143 §6.1: key names are at most 63 bytes of [A-Za-z0-9.\-+@_]. */
const KEY_RE = /^[A-Za-z0-9.\-+@_]{1,63}$/;
/** RFC 7143 §6.1: a value is at most 255 bytes, except where a key allows more (CHAP binary values). */
export const MAX_VALUE_BYTES = 255;
const LONG_VALUE_KEYS = new Set(['CHAP_C', 'CHAP_R', 'CHAP_N']);
const MAX_LONG_VALUE_BYTES = 8192;
/** Our own bound on one text exchange (all PDUs of a C-bit sequence) and on pairs in it. */
export const MAX_TEXT_BYTES = 65536;
export const MAX_TEXT_PAIRS = 256;

export type TextPairs = ReadonlyArray<readonly [string, string]>;

/**
 * Parses `key=value\0key=value\0...` (RFC 7143 §6.1). Every limit is checked before anything
 * is kept; a malformed pair is a typed error the login or text layer turns into a reject.
 */
export function parseText(buf: Buffer): Array<[string, string]> {
  if (buf.length > MAX_TEXT_BYTES) throw new PduError('ISCSI_ERR_TEXT', `text of ${buf.length} bytes exceeds ${MAX_TEXT_BYTES}`);
  const out: Array<[string, string]> = [];
  let start = 0;
  // A trailing pair without its NUL is tolerated (some initiators omit the last terminator).
  while (start < buf.length) {
    let end = buf.indexOf(0, start);
    if (end < 0) end = buf.length;
    if (end > start) {
      if (out.length >= MAX_TEXT_PAIRS) throw new PduError('ISCSI_ERR_TEXT', `more than ${MAX_TEXT_PAIRS} keys`);
      const pair = buf.toString('utf8', start, end);
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new PduError('ISCSI_ERR_TEXT', `malformed text pair "${pair.slice(0, 80)}"`, RejectReason.InvalidPduField);
      const key = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (!KEY_RE.test(key)) throw new PduError('ISCSI_ERR_TEXT', `invalid key name "${key.slice(0, 80)}"`, RejectReason.InvalidPduField);
      const max = LONG_VALUE_KEYS.has(key) ? MAX_LONG_VALUE_BYTES : MAX_VALUE_BYTES;
      if (Buffer.byteLength(value) > max)
        throw new PduError('ISCSI_ERR_TEXT', `value of ${key} longer than ${max} bytes`, RejectReason.InvalidPduField);
      out.push([key, value]);
    }
    start = end + 1;
  }
  return out;
}

export function serializeText(pairs: TextPairs): Buffer {
  if (pairs.length === 0) return Buffer.alloc(0);
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}
