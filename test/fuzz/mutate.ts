import type { Rng } from './rng';

const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 512, 8192, 65536, 1 << 24];

/**
 * Mutates one wire PDU (BHS + data): bit flips, interesting values in header fields, length
 * fields that lie, truncation and extension, opcode swaps, splices. The result is bounded in
 * size (at most `maxBytes`).
 */
export function mutate(rng: Rng, pdu: Buffer, other: Buffer, maxBytes = 96 * 1024): Buffer {
  let b = Buffer.from(pdu);
  const rounds = 1 + rng.int(4);
  // Most mutations keep the framing (bytes 4-7 and the length) intact, so the PDUs after
  // them are still read as PDUs and the fuzzing reaches deep into the command handling;
  // one input in forty lies about lengths or cuts the stream.
  const keepFraming = (i: number): boolean => i < 4 || i > 7;
  const structural = rng.chance(1 / 40);
  for (let r = 0; r < rounds; r++) {
    switch (structural && r === 0 ? rng.pick([3, 4, 7, 8]) : rng.pick([0, 1, 2, 5, 6, 9, 10])) {
      case 0: {
        // Flip a few bits, length fields excepted.
        for (let i = 0, n = 1 + rng.int(8); i < n && b.length > 0; i++) {
          const at = rng.int(b.length);
          if (keepFraming(at)) b[at] ^= 1 << rng.int(8);
        }
        break;
      }
      case 1: {
        // Interesting byte in the BHS.
        const at = rng.int(48);
        if (b.length >= 48 && keepFraming(at)) b[at] = rng.pick(INTERESTING_8);
        break;
      }
      case 2: {
        // Interesting 32-bit value at an aligned BHS field (LUN, ITT, EDTL, CmdSN, offsets ...).
        if (b.length >= 48) b.writeUInt32BE(rng.pick(INTERESTING_32) >>> 0, 4 * (2 + rng.int(10)));
        break;
      }
      case 3: {
        // DataSegmentLength that lies.
        if (b.length >= 48) {
          const v = rng.chance(0.15) ? rng.int(1 << 24) : Math.max(0, b.length - 48 + rng.int(9) - 4);
          b[5] = (v >> 16) & 0xff;
          b[6] = (v >> 8) & 0xff;
          b[7] = v & 0xff;
        }
        break;
      }
      case 4: {
        // TotalAHSLength.
        if (b.length >= 48) b[4] = rng.pick([0, 1, 2, 4, 0x10, 0xff]);
        break;
      }
      case 5: {
        // Another opcode (initiator and target opcodes, and unknown ones).
        if (b.length >= 48)
          b[0] = (b[0] & 0xc0) | rng.pick([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x1c, 0x1e, 0x3f, 0x21, 0x25, 0x31, 0x3c]);
        break;
      }
      case 6: {
        // Flags byte.
        if (b.length >= 48) b[1] = rng.u32() & 0xff;
        break;
      }
      case 7: {
        // Truncate.
        b = b.subarray(0, rng.int(b.length + 1));
        break;
      }
      case 8: {
        // Extend with random bytes.
        b = Buffer.concat([b, rng.bytes(1 + rng.int(512))]);
        break;
      }
      case 9: {
        // Splice: this BHS with another PDU's CDB or data (framing kept).
        if (b.length >= 48 && other.length >= 48) {
          if (rng.chance(0.5)) other.copy(b, 32, 32, 48);
          else {
            const data = other.subarray(48);
            const bhs = Buffer.from(b.subarray(0, 48));
            const n = data.length;
            bhs[5] = (n >> 16) & 0xff;
            bhs[6] = (n >> 8) & 0xff;
            bhs[7] = n & 0xff;
            b = Buffer.concat([bhs, data]);
          }
        }
        break;
      }
      default: {
        // Random CDB bytes (SCSI command) or random text in the data segment.
        if (b.length >= 48 && rng.chance(0.5))
          for (let i = 32; i < 48; i++)
            if (rng.chance(0.3)) b[i] = rng.u32() & 0xff;
            else if (b.length > 48) b[48 + rng.int(b.length - 48)] = rng.pick([0x00, 0x3d, 0x2c, 0xff, 0x41]);
      }
    }
  }
  return b.length > maxBytes ? b.subarray(0, maxBytes) : b;
}

/** A random PDU: a BHS of random bytes with a small, honest data segment. */
export function randomPdu(rng: Rng): Buffer {
  const len = rng.chance(0.5) ? 0 : rng.int(2048);
  const bhs = rng.bytes(48);
  bhs[4] = rng.chance(0.8) ? 0 : bhs[4];
  bhs[5] = (len >> 16) & 0xff;
  bhs[6] = (len >> 8) & 0xff;
  bhs[7] = len & 0xff;
  return Buffer.concat([bhs, rng.bytes((len + 3) & ~3)]);
}
