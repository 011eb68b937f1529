import { be, checkControlByte, checkLbaRange, type LbaRange, toBytes, truncate } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField, invalidParamField, ScsiError } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import type { ITNexus } from '../nexus';
import { type CopyRange, copyRange, MAX_PIECES_IN_FLIGHT } from './copy-engine';
import {
  type BlockSegment,
  COPY_LIMITS,
  type CscdDescriptor,
  IMPLEMENTED_DESCRIPTOR_TYPES,
  listField,
  MAX_PARAMETER_LIST_LENGTH,
  parseCopyParameters,
} from './extended-copy-params';
import { heldResults } from './held-results';
import { checkWritable } from './rw-decode';
import { naa6 } from './vpd';

/** A copy operation as RECEIVE COPY STATUS(LID1) reports it. */
interface CopyOperation {
  state: 'running' | 'done' | 'failed';
  segmentsProcessed: number;
  bytes: number;
}

/** Copy operations by copy manager, I_T nexus and LIST IDENTIFIER (at most 256 identifiers per nexus). */
const operationsOf = heldResults<CopyOperation>();

/** A segment once its CSCDs are resolved to logical units and its ranges checked. */
type ResolvedSegment = CopyRange;

/**
 * Finds the LU an identification CSCD descriptor names among the LUs of our own target. Ours
 * are named by one binary NAA designator with LU association (VPD 83h); a designator that
 * matches none is a copy target we cannot reach (spc4r37 §6.4.5).
 */
function resolveCscd(c: CscdDescriptor, lu: LogicalUnit): LogicalUnit {
  const d = c.designation;
  const isLuNaa = d.codeSet === 0x1 && d.association === 0 && d.type === 0x3;
  const found = isLuNaa ? lu.target.logicalUnits().find((l) => naa6(l.identity.uuid).equals(d.value)) : undefined;
  if (!found) throw new ScsiError('UnreachableCopyTarget', listField(c.at + 4));
  // DISK BLOCK LENGTH must describe the LU as it is: offsets are computed from it.
  if (found.blockSize !== c.diskBlockLength) throw invalidParamField(c.at + 29);
  return found;
}

/**
 * THE range check (cdb.ts) against the copy target's capacity. The copy manager meets the
 * error while processing the segment, so it reports COPY ABORTED with a segment pointer to
 * the LBA field rather than the target's own ILLEGAL REQUEST (spc4r37 §6.4, errors detected during
 * processing of segment descriptors).
 */
function checkSegmentRange(r: LbaRange, lu: LogicalUnit, lbaField: number): void {
  try {
    checkLbaRange(r, lu.capacityBlocks);
  } catch (e) {
    if (e instanceof ScsiError && e.reason === 'LbaOutOfRange') throw new ScsiError('CopySegmentAborted', listField(lbaField));
    throw e;
  }
}

/** Resolves and checks one block to block segment before any data moves. */
function resolveSegment(s: BlockSegment, cscds: readonly CscdDescriptor[], lu: LogicalUnit, nexus: ITNexus): ResolvedSegment {
  const cscd = (index: number, indexField: number): LogicalUnit => {
    // Indexes past the CSCD list (including the spc4r37 Table 150 special values) name
    // nothing we can reach.
    const c = cscds[index];
    if (!c) throw new ScsiError('UnreachableCopyTarget', listField(indexField));
    return resolveCscd(c, lu);
  };
  const source = cscd(s.sourceIndex, s.at + 4);
  const destination = cscd(s.destinationIndex, s.at + 6);
  // DC picks whose blocks NUMBER OF BLOCKS counts; the bytes must fill whole blocks on both.
  const bytes = s.blocks * (s.countsDestination ? destination.blockSize : source.blockSize);
  if (bytes % source.blockSize !== 0 || bytes % destination.blockSize !== 0 || bytes > COPY_LIMITS.maxSegmentBytes) {
    throw invalidParamField(s.at + 10);
  }
  const from = { lba: s.sourceLba, blocks: BigInt(bytes / source.blockSize) };
  const to = { lba: s.destinationLba, blocks: BigInt(bytes / destination.blockSize) };
  checkSegmentRange(from, source, s.at + 12);
  checkSegmentRange(to, destination, s.at + 20);
  checkWritable(destination);
  // The LU addressed was checked as 'write' by the pipeline; the others are reached on behalf
  // of the same I_T nexus, so its reservations apply to them too.
  if (source !== lu) source.reservations.check(nexus, { reservation: 'read' });
  if (destination !== lu) destination.reservations.check(nexus, { reservation: 'write' });
  return {
    source: source.volume,
    destination: destination.volume,
    sourceOffset: toBytes(from, source.blockSize).offset,
    destinationOffset: toBytes(to, destination.blockSize).offset,
    length: bytes,
  };
}

/**
 * spc4r37 §6.4: EXTENDED COPY(LID1), the VMware VAAI "full copy" primitive, between LUs of
 * this target. The parameter list is checked whole (ILLEGAL REQUEST), then every segment is
 * resolved and range checked (COPY ABORTED when a copy target cannot be reached or a range
 * does not fit), and only then does data move, so a bad list copies nothing.
 */
export const EXTENDED_COPY: Command<LogicalUnit> = defineCommand({
  name: 'EXTENDED COPY(LID1)',
  opcode: 0x83,
  serviceAction: 0x00,
  cdbLength: 16,
  usage: [0x83, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  reservation: 'write',
  timeout: 60,
  decode(cdb) {
    checkControlByte(cdb.subarray(0, 16));
    const parameterListLength = be.u32(cdb, 10);
    // More than a header and a full descriptor list cannot be a list we accept; refusing it
    // here keeps an oversized Data-Out from being buffered at all.
    if (parameterListLength > MAX_PARAMETER_LIST_LENGTH) throw new ScsiError('ParameterListLengthError');
    return { parameterListLength, dataOutLength: parameterListLength, transferLength: parameterListLength };
  },
  async execute({ lu, nexus, dataOut }, r) {
    // A PARAMETER LIST LENGTH of zero is not an error: nothing is copied (spc4r37 §6.4).
    if (r.parameterListLength === 0) return undefined;
    const params = parseCopyParameters(dataOut.subarray(0, r.parameterListLength));
    const ops = operationsOf(lu, nexus);
    const tracked = params.usage !== 'none';
    if (tracked && ops.get(params.listId)?.state === 'running') throw new ScsiError('OperationInProgress');
    const op: CopyOperation = { state: 'running', segmentsProcessed: 0, bytes: 0 };
    // A new copy with the list identifier of an earlier one replaces its results.
    if (tracked) ops.set(params.listId, op);
    try {
      const segments = params.segments.map((s) => resolveSegment(s, params.cscds, lu, nexus));
      for (const s of segments) {
        await copyRange(s, (bytes) => {
          op.bytes += bytes;
        });
        op.segmentsProcessed++;
      }
      op.state = 'done';
    } catch (e) {
      op.state = 'failed';
      throw e;
    } finally {
      // LIST ID USAGE 10b: the list identifier names the copy only while it runs.
      if (params.usage === 'no-hold' && ops.get(params.listId) === op) ops.delete(params.listId);
    }
    return undefined;
  },
});

interface ReceiveRequest {
  readonly listId: number;
  readonly allocationLength: number;
  readonly dataOutLength: 0;
  readonly transferLength: number;
}

/** RECEIVE COPY RESULTS CDBs (opcode 84h): LIST IDENTIFIER in byte 2, ALLOCATION LENGTH in 10-13. */
function decodeReceive(cdb: Buffer): ReceiveRequest {
  checkControlByte(cdb.subarray(0, 16));
  const allocationLength = be.u32(cdb, 10);
  return { listId: cdb[2], allocationLength, dataOutLength: 0, transferLength: allocationLength };
}

/** spc4r37: COPY MANAGER STATUS codes of RECEIVE COPY STATUS(LID1). */
const COPY_MANAGER_STATUS = { running: 0x00, done: 0x01, failed: 0x02 } as const;

/**
 * SPC-4 RECEIVE COPY STATUS(LID1) (84h/00h, SPC-3's COPY STATUS): progress or result
 * of the copy this I_T nexus started with the list identifier, whose LIST ID USAGE was 00b
 * (held until replaced or the nexus is lost) or 10b (while it runs).
 */
export const RECEIVE_COPY_STATUS: Command<LogicalUnit> = defineCommand({
  name: 'RECEIVE COPY STATUS(LID1)',
  opcode: 0x84,
  serviceAction: 0x00,
  cdbLength: 16,
  usage: [0x84, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  reservation: 'read',
  decode: decodeReceive,
  execute({ lu, nexus }, r) {
    const op = operationsOf(lu, nexus).get(r.listId);
    // No copy operation with that list identifier: the LIST IDENTIFIER field is invalid.
    if (!op) throw invalidCdbField(2);
    const d = Buffer.alloc(12);
    d.writeUInt32BE(d.length - 4, 0); // AVAILABLE DATA
    d[4] = COPY_MANAGER_STATUS[op.state]; // HDD = 0: we hold no data for RECEIVE COPY DATA
    d.writeUInt16BE(Math.min(op.segmentsProcessed, 0xffff), 5); // SEGMENTS PROCESSED
    d[7] = 0x00; // TRANSFER COUNT UNITS: bytes (a command moves at most 512 MiB)
    d.writeUInt32BE(op.bytes, 8); // TRANSFER COUNT
    return truncate(d, r.allocationLength);
  },
});

/** Concurrent copies we describe: the copies that can hold a copy buffer at once. */
const CONCURRENT_COPIES = MAX_PIECES_IN_FLIGHT;

/**
 * SPC-4 RECEIVE COPY OPERATING PARAMETERS (84h/03h): the limits parseCopyParameters
 * enforces, and the descriptor type codes we implement.
 */
export const RECEIVE_COPY_OPERATING_PARAMETERS: Command<LogicalUnit> = defineCommand({
  name: 'RECEIVE COPY OPERATING PARAMETERS',
  opcode: 0x84,
  serviceAction: 0x03,
  cdbLength: 16,
  usage: [0x84, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  reservation: 'read',
  decode: decodeReceive,
  execute({ lu }, r) {
    const codes = IMPLEMENTED_DESCRIPTOR_TYPES;
    const d = Buffer.alloc(44 + codes.length);
    d.writeUInt32BE(d.length - 4, 0); // AVAILABLE DATA
    d[4] = 0x01; // SNLID: LIST ID USAGE 11b (no list identifier) is supported
    d.writeUInt16BE(COPY_LIMITS.maxCscdDescriptors, 8);
    d.writeUInt16BE(COPY_LIMITS.maxSegmentDescriptors, 10);
    d.writeUInt32BE(COPY_LIMITS.maxDescriptorListLength, 12);
    d.writeUInt32BE(COPY_LIMITS.maxSegmentBytes, 16); // MAXIMUM SEGMENT LENGTH
    d.writeUInt32BE(COPY_LIMITS.maxInlineDataBytes, 20);
    // HELD DATA LIMIT and MAXIMUM STREAM DEVICE TRANSFER SIZE: no held data, no streams.
    d.writeUInt16BE(CONCURRENT_COPIES, 34); // TOTAL CONCURRENT COPIES
    d[36] = CONCURRENT_COPIES; // MAXIMUM CONCURRENT COPIES
    d[37] = Math.log2(lu.blockSize); // DATA SEGMENT GRANULARITY: whole blocks
    // INLINE DATA GRANULARITY and HELD DATA GRANULARITY (bytes 38-39): unused, 2^0.
    d[43] = codes.length; // IMPLEMENTED DESCRIPTOR LIST LENGTH
    Buffer.from(codes).copy(d, 44);
    return truncate(d, r.allocationLength);
  },
});

export const EXTENDED_COPY_COMMANDS: readonly Command<LogicalUnit>[] = [EXTENDED_COPY, RECEIVE_COPY_STATUS, RECEIVE_COPY_OPERATING_PARAMETERS];
