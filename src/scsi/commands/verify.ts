import { be, checkControlByte, checkLbaRange, toBytes } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField, ScsiError } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import { type CdbSize, checkWritable, lbaAndLength, MAX_TRANSFER_BYTES } from './rw-decode';

interface VerifyRequest {
  readonly offset: number;
  readonly length: number;
  /** BYTCHK: 0 check the medium only, 1 compare every block, 3 compare one block to each. */
  readonly bytchk: 0 | 1 | 3;
  readonly dataOutLength: number;
  readonly transferLength: number;
}

function decodeVerify(cdb: Buffer, size: CdbSize, lu: LogicalUnit, write: boolean): VerifyRequest {
  checkControlByte(cdb.subarray(0, size));
  // VRPROTECT/WRPROTECT must be zero: no protection information.
  if (cdb[1] & 0xe0) throw invalidCdbField(1, 7);
  const { lba, blocks } = lbaAndLength(cdb, size);
  checkLbaRange({ lba, blocks }, lu.capacityBlocks);
  if (blocks * BigInt(lu.blockSize) > BigInt(MAX_TRANSFER_BYTES)) throw invalidCdbField(size === 16 ? 10 : size === 12 ? 6 : 7);
  const { offset, length } = toBytes({ lba, blocks }, lu.blockSize);
  if (write) {
    checkWritable(lu);
    return { offset, length, bytchk: 1, dataOutLength: length, transferLength: length };
  }
  const bytchk = (cdb[1] >> 1) & 0x03;
  if (bytchk === 2) throw invalidCdbField(1, 2);
  const out = bytchk === 0 ? 0 : bytchk === 1 ? length : blocks > 0n ? lu.blockSize : 0;
  return { offset, length, bytchk: bytchk as 0 | 1 | 3, dataOutLength: out, transferLength: out };
}

/** Compares the medium with what the initiator sent; MISCOMPARE gives the first differing byte. */
async function compare(lu: LogicalUnit, r: VerifyRequest, dataOut: Buffer): Promise<void> {
  const stored = await lu.volume.read(r.offset, r.length);
  if (r.bytchk === 0) return; // reading it back, checksums verified, is the medium check
  const bs = lu.blockSize;
  for (let i = 0; i < stored.length; i++) {
    const want = r.bytchk === 1 ? dataOut[i] : dataOut[i % bs];
    if (stored[i] !== want) throw new ScsiError('MiscompareDuringVerify', { information: BigInt(i) });
  }
}

const VERIFY_OPCODES: Record<CdbSize, number> = { 6: 0, 10: 0x2f, 12: 0xaf, 16: 0x8f };
const WRITE_VERIFY_OPCODES: Record<CdbSize, number> = { 6: 0, 10: 0x2e, 12: 0xae, 16: 0x8e };

function usage(op: number, size: 10 | 12 | 16, byte1: number): number[] {
  const u = Array<number>(size).fill(0xff);
  u[0] = op;
  u[1] = byte1;
  u[size === 16 ? 14 : size === 12 ? 10 : 6] = 0x00; // GROUP NUMBER not used
  u[size - 1] = 0x00;
  return u;
}

/** SBC-4 §5.30-§5.32: VERIFY (10/12/16), BYTCHK 00b, 01b and 11b. */
function verify(size: 10 | 12 | 16): Command<LogicalUnit> {
  return defineCommand({
    name: `VERIFY(${size})`,
    opcode: VERIFY_OPCODES[size],
    cdbLength: size,
    usage: usage(VERIFY_OPCODES[size], size, 0x16),
    reservation: 'read',
    decode: (cdb, lu) => decodeVerify(cdb, size, lu, false),
    async execute({ lu, dataOut }, r) {
      if (r.length > 0) await compare(lu, r, dataOut);
      return undefined;
    },
  });
}

/**
 * SBC-4 §5.46-§5.48: WRITE AND VERIFY (10/12/16): the write is made durable (as with FUA) and
 * then read back and compared.
 */
function writeAndVerify(size: 10 | 12 | 16): Command<LogicalUnit> {
  return defineCommand({
    name: `WRITE AND VERIFY(${size})`,
    opcode: WRITE_VERIFY_OPCODES[size],
    cdbLength: size,
    usage: usage(WRITE_VERIFY_OPCODES[size], size, 0x12),
    reservation: 'write',
    decode: (cdb, lu) => decodeVerify(cdb, size, lu, true),
    shrink: (r, bytes, lu) => {
      const length = Math.floor(bytes / lu.blockSize) * lu.blockSize;
      return { ...r, length, dataOutLength: length };
    },
    async execute({ lu, dataOut }, r) {
      if (r.length === 0) return undefined;
      const data = dataOut.subarray(0, r.length);
      await lu.volume.write(r.offset, data, { fua: true });
      await compare(lu, r, data);
      return undefined;
    },
  });
}

export const VERIFY_COMMANDS: readonly Command<LogicalUnit>[] = [
  verify(10),
  verify(12),
  verify(16),
  writeAndVerify(10),
  writeAndVerify(12),
  writeAndVerify(16),
];

/** PRE-FETCH(10/16) (SBC-4 §5.11/§5.12): read-ahead into the chunk cache. */
function prefetch(size: 10 | 16): Command<LogicalUnit> {
  const opcode = size === 10 ? 0x34 : 0x90;
  return defineCommand({
    name: `PRE-FETCH(${size})`,
    opcode,
    cdbLength: size,
    usage: size === 10 ? [opcode, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00] : [opcode, 0x02, ...Array<number>(12).fill(0xff), 0x00, 0x00],
    reservation: 'read',
    decode(cdb, lu) {
      checkControlByte(cdb.subarray(0, size));
      const lba = size === 10 ? BigInt(be.u32(cdb, 2)) : be.u64(cdb, 2);
      const blocks = BigInt(size === 10 ? be.u16(cdb, 7) : be.u32(cdb, 10));
      checkLbaRange({ lba, blocks }, lu.capacityBlocks);
      return { range: toBytes({ lba, blocks }, lu.blockSize), dataOutLength: 0, transferLength: 0 };
    },
    async execute({ lu }, r) {
      // GOOD rather than CONDITION MET: the cache is not promised to keep the range.
      if (r.range.length > 0) await lu.volume.prefetch(r.range);
      return undefined;
    },
  });
}

export const PREFETCH_COMMANDS: readonly Command<LogicalUnit>[] = [prefetch(10), prefetch(16)];
