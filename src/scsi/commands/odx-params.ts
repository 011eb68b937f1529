import { be } from '../cdb';
import { invalidParamField, ScsiError } from '../errors';
import { listField } from './extended-copy-params';

const MiB = 1024 * 1024;

/**
 * The ODX limits, reported in the Block Device ROD Token Limits descriptor of VPD 8Fh and
 * enforced here. Windows (classpnp `ClasspServiceWriteUsingTokenTransferRequest`) sizes each
 * WRITE USING TOKEN to the OPTIMAL TRANSFER COUNT (at most 256 MiB) and gives up an offload
 * write whose commands take longer than 4 s together (`CopyOffloadMaxTargetDuration`): 64 MiB
 * is 64 whole chunks, one command's worth of S3 CopyObject requests well inside that.
 */
export const ODX_LIMITS = {
  /** Windows sends at most 64 range descriptors anyway (MAX_NUMBER_BLOCK_DEVICE_DESCRIPTORS). */
  maxRangeDescriptors: 64,
  maxInactivityTimeoutS: 600,
  defaultInactivityTimeoutS: 60,
  /** What one POPULATE TOKEN may represent and one WRITE USING TOKEN may write (EXTENDED COPY's bound). */
  maxTokenTransferBytes: 512 * MiB,
  optimalTransferBytes: 64 * MiB,
};

/** spc4r37 ROD types (the ROD TYPE field of a ROD token and of POPULATE TOKEN). */
export const ROD_TYPE = {
  pointInTimeDefault: 0x00800000,
  /** Ours: the token is cancelled when its data is written (it stands for the data by reference). */
  pointInTimeChangeVulnerable: 0x00800001,
  pointInTimeAny: 0x0080ffff,
  /** sbc3r35 block device zero ROD token: WRITE USING TOKEN writes zeros. */
  blockDeviceZero: 0xffff0001,
} as const;

/** ROD TYPEs a POPULATE TOKEN with RTV set may ask for: the point in time kinds ours satisfies. */
const ACCEPTED_ROD_TYPES: readonly number[] = [ROD_TYPE.pointInTimeDefault, ROD_TYPE.pointInTimeChangeVulnerable, ROD_TYPE.pointInTimeAny];

export const ROD_TOKEN_BYTES = 512;
/** Header of the POPULATE TOKEN parameter list; range descriptors start here. */
export const POPULATE_TOKEN_HEADER = 16;
/** Header of the WRITE USING TOKEN parameter list (the 512-byte ROD token at byte 16). */
export const WRITE_USING_TOKEN_HEADER = 536;
const RANGE_DESCRIPTOR = 16;
/**
 * The longest parameter list decode accepts: DATA LENGTH is 16 bits. Longer than our descriptor
 * limit on purpose, so a list with too many descriptors gets TOO MANY SEGMENT DESCRIPTORS
 * (what classpnp understands) rather than a length error.
 */
export const MAX_ODX_PARAMETER_LIST_LENGTH = 2 + 0xffff;

/** A block device range descriptor (sbc3r35): LBA and NUMBER OF LOGICAL BLOCKS. */
export interface RangeDescriptor {
  /** Offset in the parameter list, for field pointers. */
  readonly at: number;
  readonly lba: bigint;
  readonly blocks: bigint;
}

export interface PopulateTokenParams {
  /** INACTIVITY TIMEOUT in seconds, with 0 (the default) resolved. */
  readonly inactivityTimeoutS: number;
  readonly ranges: readonly RangeDescriptor[];
  /** Byte of the parameter list holding the range descriptor list length (field pointers). */
  readonly listLengthField: number;
}

export interface WriteUsingTokenParams {
  /** DEL_TKN: the token is deleted once this command ends, whatever its outcome (as FreeBSD CTL does). */
  readonly deleteToken: boolean;
  /** BLOCK OFFSET INTO ROD, in logical blocks of the LU the command is sent to. */
  readonly offsetIntoRod: bigint;
  readonly token: Buffer;
  readonly ranges: readonly RangeDescriptor[];
  readonly listLengthField: number;
}

/**
 * Parses a POPULATE TOKEN parameter list (sbc3r35 POPULATE TOKEN parameter list): DATA LENGTH,
 * IMMED and RTV, INACTIVITY TIMEOUT, ROD TYPE, then the range descriptors. Everything here is
 * a property of the list alone (ILLEGAL REQUEST); ranges meet the capacity later.
 */
export function parsePopulateToken(p: Buffer): PopulateTokenParams {
  if (p.length < POPULATE_TOKEN_HEADER) throw new ScsiError('ParameterListLengthError');
  const flags = p[2];
  if (flags & 0xfc) throw invalidParamField(2);
  // IMMED: status before the token exists. Windows always sends 0; we support only that.
  if (flags & 0x01) throw invalidParamField(2, 0);
  // RTV: the initiator names the ROD type it wants; ours is a point in time copy.
  if (flags & 0x02 && !ACCEPTED_ROD_TYPES.includes(be.u32(p, 8))) throw invalidParamField(8);
  const timeout = be.u32(p, 4);
  if (timeout > ODX_LIMITS.maxInactivityTimeoutS) throw invalidParamField(4);
  return {
    inactivityTimeoutS: timeout === 0 ? ODX_LIMITS.defaultInactivityTimeoutS : timeout,
    ranges: parseRanges(p, POPULATE_TOKEN_HEADER - 2),
    listLengthField: POPULATE_TOKEN_HEADER - 2,
  };
}

/** Parses a WRITE USING TOKEN parameter list (sbc3r35 §5.45): flags, offset, ROD token, ranges. */
export function parseWriteUsingToken(p: Buffer): WriteUsingTokenParams {
  if (p.length < WRITE_USING_TOKEN_HEADER) throw new ScsiError('ParameterListLengthError');
  const flags = p[2];
  if (flags & 0xfc) throw invalidParamField(2);
  if (flags & 0x01) throw invalidParamField(2, 0); // IMMED, as for POPULATE TOKEN
  return {
    deleteToken: (flags & 0x02) !== 0,
    offsetIntoRod: be.u64(p, 8),
    token: p.subarray(16, 16 + ROD_TOKEN_BYTES),
    ranges: parseRanges(p, WRITE_USING_TOKEN_HEADER - 2),
    listLengthField: WRITE_USING_TOKEN_HEADER - 2,
  };
}

/**
 * The block device range descriptors after the 2-byte list length at `lengthField`. The list
 * must hold whole descriptors, fit in both DATA LENGTH and the parameter list (classpnp reads
 * a cut list as PARAMETER LIST LENGTH ERROR), stay within our count, and name no LBA twice.
 */
function parseRanges(p: Buffer, lengthField: number): RangeDescriptor[] {
  const start = lengthField + 2;
  const listLength = be.u16(p, lengthField);
  if (listLength === 0 || listLength % RANGE_DESCRIPTOR !== 0) throw invalidParamField(lengthField);
  // DATA LENGTH counts the bytes after itself.
  if (start + listLength > p.length || start + listLength > 2 + be.u16(p, 0)) throw new ScsiError('ParameterListLengthError');
  const count = listLength / RANGE_DESCRIPTOR;
  if (count > ODX_LIMITS.maxRangeDescriptors) {
    throw new ScsiError('TooManySegmentDescriptors', listField(start + ODX_LIMITS.maxRangeDescriptors * RANGE_DESCRIPTOR));
  }
  const ranges: RangeDescriptor[] = [];
  for (let i = 0; i < count; i++) {
    const at = start + i * RANGE_DESCRIPTOR;
    const r = { at, lba: be.u64(p, at), blocks: BigInt(be.u32(p, at + 8)) };
    // Overlapping descriptors are invalid (classpnp's list of 26/00 causes; FreeBSD CTL).
    if (ranges.some((o) => overlap(o, r))) throw invalidParamField(at);
    ranges.push(r);
  }
  return ranges;
}

function overlap(a: { lba: bigint; blocks: bigint }, b: { lba: bigint; blocks: bigint }): boolean {
  return a.blocks > 0n && b.blocks > 0n && a.lba < b.lba + b.blocks && b.lba < a.lba + a.blocks;
}

/** Sum of NUMBER OF LOGICAL BLOCKS over the descriptors. */
export function totalBlocks(ranges: readonly RangeDescriptor[]): bigint {
  return ranges.reduce((n, r) => n + r.blocks, 0n);
}
