import { be } from '../cdb';
import { invalidParamField, ScsiError } from '../errors';
import type { FieldPointer } from '../sense';

/** spc4r37 §6.4.5: CSCD descriptor type code of the identification descriptor CSCD descriptor. */
export const IDENTIFICATION_CSCD = 0xe4;
/** spc4r37 §6.4.6: segment descriptor type code of block device to block device. */
export const BLOCK_TO_BLOCK_SEGMENT = 0x02;
/** What RECEIVE COPY OPERATING PARAMETERS lists as implemented, ascending. */
export const IMPLEMENTED_DESCRIPTOR_TYPES: readonly number[] = [BLOCK_TO_BLOCK_SEGMENT, IDENTIFICATION_CSCD];

const HEADER_LENGTH = 16;
const CSCD_LENGTH = 32;
const BLOCK_TO_BLOCK_LENGTH = 28;

/**
 * The copy manager's limits, reported by RECEIVE COPY OPERATING PARAMETERS and enforced here.
 * A VAAI full copy uses two CSCD descriptors and one segment; a segment moves at most 32 MiB,
 * so one command moves at most 512 MiB and stays well inside initiator timeouts.
 */
export const COPY_LIMITS = {
  maxCscdDescriptors: 8,
  maxSegmentDescriptors: 16,
  /** Both full lists fit, so each count limit can be reached on its own. */
  maxDescriptorListLength: 8 * CSCD_LENGTH + 16 * BLOCK_TO_BLOCK_LENGTH,
  maxSegmentBytes: 32 * 1024 * 1024,
  /** No segment descriptor type we implement uses inline data. */
  maxInlineDataBytes: 0,
};

/** The longest parameter list we accept: a header and a full descriptor list, no inline data. */
export const MAX_PARAMETER_LIST_LENGTH = HEADER_LENGTH + COPY_LIMITS.maxDescriptorListLength + COPY_LIMITS.maxInlineDataBytes;

/**
 * LIST ID USAGE (spc4r37 §6.4.3): 00b the results are held for RECEIVE COPY STATUS, 10b the
 * list identifier names the copy only while it runs, 11b there is no list identifier.
 */
export type ListIdUsage = 'hold' | 'no-hold' | 'none';

/** A designation descriptor as VPD page 83h lays it out (SPC-5 §7.7.6.1). */
export interface Designation {
  readonly codeSet: number;
  readonly association: number;
  readonly type: number;
  readonly value: Buffer;
}

/** An identification descriptor CSCD descriptor (E4h) naming a block device. */
export interface CscdDescriptor {
  /** Offset in the parameter list, for field pointers. */
  readonly at: number;
  readonly designation: Designation;
  readonly diskBlockLength: number;
}

/** A block device to block device segment descriptor (02h). */
export interface BlockSegment {
  /** Offset in the parameter list, for field pointers. */
  readonly at: number;
  readonly sourceIndex: number;
  readonly destinationIndex: number;
  /** DC: NUMBER OF BLOCKS counts destination blocks rather than source blocks. */
  readonly countsDestination: boolean;
  readonly blocks: number;
  readonly sourceLba: bigint;
  readonly destinationLba: bigint;
}

export interface CopyParameters {
  readonly listId: number;
  readonly usage: ListIdUsage;
  readonly cscds: readonly CscdDescriptor[];
  readonly segments: readonly BlockSegment[];
}

/** Sense detail pointing at a byte of the parameter list (SPC-5 §4.4.2.4.2; with COPY ABORTED, a segment pointer with SD = 0). */
export function listField(byte: number): { field: FieldPointer } {
  return { field: { inCdb: false, byte } };
}

/**
 * Parses an EXTENDED COPY(LID1) parameter list (spc4r37 §6.4.3). Everything checked here is
 * a property of the list alone and fails with ILLEGAL REQUEST before any copy starts; which
 * logical units the descriptors reach is decided later.
 */
export function parseCopyParameters(p: Buffer): CopyParameters {
  // Truncating the header is a parameter list length error (spc4r37 §6.4.3).
  if (p.length < HEADER_LENGTH) throw new ScsiError('ParameterListLengthError');
  const listId = p[0];
  if (p[1] & 0xc0) throw invalidParamField(1, 7);
  // STR (bit 5) and PRIORITY (bits 2-0) are hints we may ignore.
  const usage = listIdUsage(p, listId);
  if (be.u32(p, 4) !== 0) throw invalidParamField(4);
  const cscdListLength = be.u16(p, 2);
  const segmentListLength = be.u32(p, 8);
  const inlineLength = be.u32(p, 12);
  // spc4r37 §6.4.3.5: descriptors longer than MAXIMUM DESCRIPTOR LIST LENGTH.
  if (cscdListLength + segmentListLength > COPY_LIMITS.maxDescriptorListLength) throw new ScsiError('ParameterListLengthError');
  if (inlineLength > COPY_LIMITS.maxInlineDataBytes) throw invalidParamField(12);
  // A parameter list length that cuts a descriptor or the inline data (spc4r37 §6.4.3).
  if (HEADER_LENGTH + cscdListLength + segmentListLength + inlineLength > p.length) throw new ScsiError('ParameterListLengthError');
  const cscdEnd = HEADER_LENGTH + cscdListLength;
  return {
    listId,
    usage,
    cscds: parseCscdList(p, HEADER_LENGTH, cscdEnd),
    segments: parseSegmentList(p, cscdEnd, cscdEnd + segmentListLength),
  };
}

function listIdUsage(p: Buffer, listId: number): ListIdUsage {
  switch ((p[1] >> 3) & 0x03) {
    case 0:
      return 'hold';
    case 2:
      return 'no-hold';
    case 3:
      // With no list identifier the LIST IDENTIFIER field must be zero.
      if (listId !== 0) throw invalidParamField(0);
      return 'none';
    default:
      throw invalidParamField(1, 4); // 01b is reserved
  }
}

function parseCscdList(p: Buffer, start: number, end: number): CscdDescriptor[] {
  const out: CscdDescriptor[] = [];
  for (let off = start; off < end; off += CSCD_LENGTH) {
    // spc4r37 §6.4.3.4: more CSCD descriptors than MAXIMUM CSCD DESCRIPTOR COUNT.
    if (out.length === COPY_LIMITS.maxCscdDescriptors) throw new ScsiError('TooManyTargetDescriptors', listField(off));
    if (p[off] !== IDENTIFICATION_CSCD) throw new ScsiError('UnsupportedTargetDescriptorType', listField(off));
    // The CSCD DESCRIPTOR LIST LENGTH ends inside a descriptor.
    if (off + CSCD_LENGTH > end) throw invalidParamField(2);
    out.push(parseIdentificationCscd(p, off));
  }
  return out;
}

/** spc4r37 §6.4.5: identification descriptor CSCD descriptor with block device parameters. */
function parseIdentificationCscd(p: Buffer, off: number): CscdDescriptor {
  // Byte 1: LU ID TYPE and NUL are ignored (SPC-4 made NUL obsolete and leaves LU ID TYPE to
  // the designator); the PERIPHERAL DEVICE TYPE must be 00h, the only kind of LU we have.
  if (p[off + 1] & 0x1f) throw invalidParamField(off + 1, 4);
  // Bytes 2-3, RELATIVE INITIATOR PORT IDENTIFIER: we reach our own LUs without a port.
  const d = off + 4;
  const length = p[d + 3];
  // The designation descriptor field is 24 bytes: a 4-byte header and at most 20 bytes.
  if (length > 20) throw invalidParamField(d + 3);
  const designation = { codeSet: p[d] & 0x0f, association: (p[d + 1] >> 4) & 0x03, type: p[d + 1] & 0x0f, value: p.subarray(d + 4, d + 4 + length) };
  // Block device type specific parameters: PAD (byte 28 bit 2) only matters for streams.
  if (p[off + 28] & 0xfb) throw invalidParamField(off + 28);
  return { at: off, designation, diskBlockLength: be.u24(p, off + 29) };
}

function parseSegmentList(p: Buffer, start: number, end: number): BlockSegment[] {
  const out: BlockSegment[] = [];
  for (let off = start; off < end; off += BLOCK_TO_BLOCK_LENGTH) {
    // spc4r37 §6.4.3.5: more segment descriptors than MAXIMUM SEGMENT DESCRIPTOR COUNT.
    if (out.length === COPY_LIMITS.maxSegmentDescriptors) throw new ScsiError('TooManySegmentDescriptors', listField(off));
    // The SEGMENT DESCRIPTOR LIST LENGTH ends inside a descriptor header.
    if (off + 4 > end) throw invalidParamField(8);
    if (p[off] !== BLOCK_TO_BLOCK_SEGMENT) throw new ScsiError('UnsupportedSegmentDescriptorType', listField(off));
    // DESCRIPTOR LENGTH excludes the first four bytes and is fixed for this type.
    if (be.u16(p, off + 2) !== BLOCK_TO_BLOCK_LENGTH - 4) throw invalidParamField(off + 2);
    if (off + BLOCK_TO_BLOCK_LENGTH > end) throw invalidParamField(8);
    out.push(parseBlockToBlock(p, off));
  }
  return out;
}

/** spc4r37 §6.4.6: block device to block device segment descriptor. */
function parseBlockToBlock(p: Buffer, off: number): BlockSegment {
  // Byte 1: DC (bit 1) and CAT (bit 0); CAT only matters when a residue is left, and a
  // copy of whole blocks leaves none.
  if (p[off + 1] & 0xfc) throw invalidParamField(off + 1, 7);
  if (be.u16(p, off + 8) !== 0) throw invalidParamField(off + 8);
  return {
    at: off,
    sourceIndex: be.u16(p, off + 4),
    destinationIndex: be.u16(p, off + 6),
    countsDestination: (p[off + 1] & 0x02) !== 0,
    blocks: be.u16(p, off + 10),
    sourceLba: be.u64(p, off + 12),
    destinationLba: be.u64(p, off + 20),
  };
}
