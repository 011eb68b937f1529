import type { LogicalUnit } from '../logical-unit';
import { MAX_PIECES_IN_FLIGHT } from './copy-engine';
import { COPY_LIMITS, IMPLEMENTED_DESCRIPTOR_TYPES } from './extended-copy-params';
import { ODX_LIMITS, ROD_TYPE } from './odx-params';

/**
 * The third-party copy commands the device server implements, by opcode and service action
 * (the unit test holds this list to the command table).
 */
export const THIRD_PARTY_COPY_COMMANDS: ReadonlyArray<{ readonly opcode: number; readonly serviceActions: readonly number[] }> = [
  // EXTENDED COPY(LID1), POPULATE TOKEN, WRITE USING TOKEN
  { opcode: 0x83, serviceActions: [0x00, 0x10, 0x11] },
  // RECEIVE COPY STATUS(LID1), RECEIVE COPY OPERATING PARAMETERS, RECEIVE ROD TOKEN INFORMATION
  { opcode: 0x84, serviceActions: [0x00, 0x03, 0x07] },
];

/** spc4r37 third-party copy descriptor: type, length, body padded to a multiple of 4 bytes. */
function descriptor(type: number, body: Buffer): Buffer {
  const padded = Buffer.alloc(Math.ceil(body.length / 4) * 4);
  body.copy(padded);
  const h = Buffer.alloc(4);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(padded.length, 2);
  return Buffer.concat([h, padded]);
}

/**
 * 0000h Block Device ROD Token Limits (sbc3r35). Windows' classpnp reads only the first
 * descriptor of the page and uses ODX only if it is this one with DESCRIPTOR LENGTH 0020h
 * (`ClasspGetBlockDeviceTokenLimitsInfo`), so it comes first.
 */
function blockDeviceRodTokenLimits(lu: LogicalUnit): Buffer {
  const b = Buffer.alloc(32); // bytes 0-5 vendor specific
  b.writeUInt16BE(ODX_LIMITS.maxRangeDescriptors, 6);
  b.writeUInt32BE(ODX_LIMITS.maxInactivityTimeoutS, 8);
  b.writeUInt32BE(ODX_LIMITS.defaultInactivityTimeoutS, 12);
  b.writeBigUInt64BE(BigInt(ODX_LIMITS.maxTokenTransferBytes / lu.blockSize), 16); // MAXIMUM TOKEN TRANSFER SIZE
  b.writeBigUInt64BE(BigInt(ODX_LIMITS.optimalTransferBytes / lu.blockSize), 24); // OPTIMAL TRANSFER COUNT
  return descriptor(0x0000, b);
}

/** 0001h Supported Commands (mandatory): each opcode with its service actions. */
function supportedCommands(): Buffer {
  const list = THIRD_PARTY_COPY_COMMANDS.flatMap((c) => [c.opcode, c.serviceActions.length, ...c.serviceActions]);
  return descriptor(0x0001, Buffer.from([list.length, ...list]));
}

/** 0004h Parameter Data: EXTENDED COPY(LID1)'s limits, as RECEIVE COPY OPERATING PARAMETERS has them. */
function parameterData(): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(COPY_LIMITS.maxCscdDescriptors, 4);
  b.writeUInt16BE(COPY_LIMITS.maxSegmentDescriptors, 6);
  b.writeUInt32BE(COPY_LIMITS.maxDescriptorListLength, 8);
  b.writeUInt32BE(COPY_LIMITS.maxInlineDataBytes, 12);
  return descriptor(0x0004, b);
}

/** 0008h Supported Descriptors: the segment and CSCD descriptor type codes EXTENDED COPY takes. */
function supportedDescriptors(): Buffer {
  return descriptor(0x0008, Buffer.from([IMPLEMENTED_DESCRIPTOR_TYPES.length, ...IMPLEMENTED_DESCRIPTOR_TYPES]));
}

/**
 * 0106h ROD Token Features: no remote tokens (a token is used on this target only); a token
 * lives while it is used within its inactivity timeout; then the block device ROD features.
 */
function rodTokenFeatures(lu: LogicalUnit): Buffer {
  const block = Buffer.alloc(48);
  block[0] = 0x00; // block device (PERIPHERAL DEVICE TYPE 00h)
  block.writeUInt16BE(block.length - 4, 2);
  block.writeUInt16BE(Math.min(lu.volume.info.chunkSize / lu.blockSize, 0xffff), 6); // OPTIMAL BLOCK ROD LENGTH GRANULARITY: one chunk
  block.writeBigUInt64BE(BigInt(ODX_LIMITS.maxTokenTransferBytes), 8); // MAXIMUM BYTES IN BLOCK ROD
  block.writeBigUInt64BE(BigInt(ODX_LIMITS.optimalTransferBytes), 16); // OPTIMAL BYTES IN BLOCK ROD TRANSFER
  block.writeBigUInt64BE(BigInt(ODX_LIMITS.maxTokenTransferBytes), 24); // OPTIMAL BYTES TO TOKEN PER SEGMENT
  block.writeBigUInt64BE(BigInt(ODX_LIMITS.optimalTransferBytes), 32); // OPTIMAL BYTES FROM TOKEN PER SEGMENT
  const b = Buffer.alloc(44);
  b[0] = 0x00; // REMOTE TOKENS: none
  b.writeUInt32BE(1, 12); // MINIMUM TOKEN LIFETIME (s): the shortest inactivity timeout we take
  b.writeUInt32BE(0xffffffff, 16); // MAXIMUM TOKEN LIFETIME: none while the token is used
  b.writeUInt32BE(ODX_LIMITS.maxInactivityTimeoutS, 20); // MAXIMUM TOKEN INACTIVITY TIMEOUT
  b.writeUInt16BE(block.length, 42); // ROD DEVICE TYPE SPECIFIC FEATURES DESCRIPTORS LENGTH
  return descriptor(0x0106, Buffer.concat([b, block]));
}

/** 0108h Supported ROD Types: ours (made and taken), and the block device zero token (taken). */
function supportedRodTypes(): Buffer {
  const types: Array<[number, number]> = [
    [ROD_TYPE.pointInTimeChangeVulnerable, 0x03], // TOKEN IN, TOKEN OUT
    [ROD_TYPE.blockDeviceZero, 0x02], // TOKEN IN
  ];
  const list = Buffer.alloc(64 * types.length);
  types.forEach(([type, flags], i) => {
    list.writeUInt32BE(type, 64 * i);
    list[64 * i + 4] = flags;
  });
  const h = Buffer.alloc(4);
  h.writeUInt16BE(list.length, 2); // ROD TYPE DESCRIPTORS LENGTH
  return descriptor(0x0108, Buffer.concat([h, list]));
}

/** 8001h General Copy Operations (mandatory): what RECEIVE COPY OPERATING PARAMETERS says too. */
function generalCopyOperations(lu: LogicalUnit): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32BE(MAX_PIECES_IN_FLIGHT, 0); // TOTAL CONCURRENT COPIES
  b.writeUInt32BE(MAX_PIECES_IN_FLIGHT, 4); // MAXIMUM IDENTIFIED CONCURRENT COPIES
  b.writeUInt32BE(COPY_LIMITS.maxSegmentBytes, 8); // MAXIMUM SEGMENT LENGTH
  b[12] = Math.log2(lu.blockSize); // DATA SEGMENT GRANULARITY: whole blocks
  return descriptor(0x8001, b);
}

/**
 * 8Fh: Third-party Copy (spc4r37 §7.8.17): the copy manager's descriptors in ascending type
 * order, which puts Windows' Block Device ROD Token Limits first.
 */
export function thirdPartyCopy(lu: LogicalUnit): Buffer {
  return Buffer.concat([
    blockDeviceRodTokenLimits(lu),
    supportedCommands(),
    parameterData(),
    supportedDescriptors(),
    rodTokenFeatures(lu),
    supportedRodTypes(),
    generalCopyOperations(lu),
  ]);
}
