import type { ByteRange } from '../../storage/volume';
import { invariant } from '../../util/invariant';
import { be, checkControlByte, checkLbaRange, toBytes } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidParamField, ScsiError } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import type { ITNexus } from '../nexus';
import type { RodToken } from '../rod-tokens';
import { type CopyRange, copyRange } from './copy-engine';
import {
  MAX_ODX_PARAMETER_LIST_LENGTH,
  ODX_LIMITS,
  parsePopulateToken,
  parseWriteUsingToken,
  type RangeDescriptor,
  ROD_TYPE,
  type WriteUsingTokenParams,
} from './odx-params';
import { createRodToken, rodTypeOf } from './rod-token';
import { checkWritable } from './rw-decode';
import { beginOperation, failOperation, POPULATE_TOKEN_SA, type TokenOperation, WRITE_USING_TOKEN_SA } from './token-operations';

interface TokenCommandRequest {
  readonly listId: number;
  readonly parameterListLength: number;
  readonly dataOutLength: number;
  readonly transferLength: number;
}

/** POPULATE TOKEN and WRITE USING TOKEN CDBs (sbc3r35): LIST IDENTIFIER 6-9, PARAMETER LIST LENGTH 10-13. */
function decodeTokenCommand(cdb: Buffer): TokenCommandRequest {
  checkControlByte(cdb.subarray(0, 16));
  const parameterListLength = be.u32(cdb, 10);
  // Longer than any list DATA LENGTH can describe: refused before the Data-Out is buffered.
  if (parameterListLength > MAX_ODX_PARAMETER_LIST_LENGTH) throw new ScsiError('ParameterListLengthError');
  return { listId: be.u32(cdb, 6), parameterListLength, dataOutLength: parameterListLength, transferLength: parameterListLength };
}

/** A range descriptor, range checked against the LU, as bytes. */
interface CheckedRange extends ByteRange {
  readonly descriptor: RangeDescriptor;
}

/**
 * THE range check (cdb.ts) of every descriptor against `lu` (LBA OUT OF RANGE, which classpnp
 * expects), then the total against MAXIMUM TOKEN TRANSFER SIZE. Empty descriptors move nothing.
 */
function checkedRanges(ranges: readonly RangeDescriptor[], listLengthField: number, lu: LogicalUnit): CheckedRange[] {
  for (const r of ranges) checkLbaRange(r, lu.capacityBlocks);
  const total = ranges.reduce((n, r) => n + r.blocks, 0n);
  if (total * BigInt(lu.blockSize) > BigInt(ODX_LIMITS.maxTokenTransferBytes)) throw invalidParamField(listLengthField);
  return ranges.filter((r) => r.blocks > 0n).map((r) => ({ ...toBytes(r, lu.blockSize), descriptor: r }));
}

/**
 * Runs an operation's work, recording how it ended for RECEIVE ROD TOKEN INFORMATION. Work
 * that stopped because task management aborted the command ends 'failed' (its status is never
 * sent: the transport drops it).
 */
async function tracked(op: TokenOperation, lu: LogicalUnit, aborted: () => boolean, work: () => Promise<void> | void): Promise<undefined> {
  try {
    await work();
    op.state = aborted() ? 'failed' : 'done';
  } catch (e) {
    failOperation(op, e, lu.descriptorSense);
    throw e;
  }
  return undefined;
}

/**
 * sbc3r35 POPULATE TOKEN (83h/10h), ODX's "offload read": a ROD token standing for the listed
 * ranges of this LU, created at completion and held for RECEIVE ROD TOKEN INFORMATION under
 * (LU, I_T nexus, LIST IDENTIFIER). No data moves: the token refers to the data, and the
 * target's token table cancels it if the data changes before WRITE USING TOKEN reads it.
 */
export const POPULATE_TOKEN: Command<LogicalUnit> = defineCommand({
  name: 'POPULATE TOKEN',
  opcode: 0x83,
  serviceAction: 0x10,
  cdbLength: 16,
  usage: [0x83, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  reservation: 'read',
  decode: decodeTokenCommand,
  execute({ lu, nexus, dataOut, aborted }, r) {
    // No parameter list, nothing to do (as EXTENDED COPY with PARAMETER LIST LENGTH zero).
    if (r.parameterListLength === 0) return undefined;
    const params = parsePopulateToken(dataOut.subarray(0, r.parameterListLength));
    const ranges = checkedRanges(params.ranges, params.listLengthField, lu);
    const op = beginOperation(lu, nexus, r.listId, POPULATE_TOKEN_SA);
    return tracked(op, lu, aborted, () => {
      const bytes = ranges.reduce((n, x) => n + x.length, 0);
      const token = createRodToken(lu, bytes);
      lu.target.rodTokens.add(token, lu, ranges, params.inactivityTimeoutS * 1000);
      op.token = token;
      op.blocks = BigInt(bytes / lu.blockSize);
    });
  },
});

/**
 * sbc3r35 §5.45 WRITE USING TOKEN (83h/11h), ODX's "offload write": the destination ranges, in
 * order, get the bytes the token stands for, read as one stream starting BLOCK OFFSET INTO
 * ROD blocks in. Everything is checked before any data moves; the copy goes through the
 * shared data mover (S3 CopyObject where chunks line up). The block device zero ROD token
 * writes zeros instead.
 */
export const WRITE_USING_TOKEN: Command<LogicalUnit> = defineCommand({
  name: 'WRITE USING TOKEN',
  opcode: 0x83,
  serviceAction: 0x11,
  cdbLength: 16,
  usage: [0x83, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  reservation: 'write',
  timeout: 60,
  decode(cdb, lu) {
    const r = decodeTokenCommand(cdb);
    // A write to a write-protected medium fails before any data moves (SBC-4 §4.11).
    if (r.parameterListLength > 0) checkWritable(lu);
    return r;
  },
  execute({ lu, nexus, dataOut, aborted }, r) {
    if (r.parameterListLength === 0) return undefined;
    const params = parseWriteUsingToken(dataOut.subarray(0, r.parameterListLength));
    const destination = checkedRanges(params.ranges, params.listLengthField, lu);
    const op = beginOperation(lu, nexus, r.listId, WRITE_USING_TOKEN_SA);
    return tracked(op, lu, aborted, () =>
      rodTypeOf(params.token) === ROD_TYPE.blockDeviceZero
        ? writeZeros(lu, destination, op)
        : writeFromToken({ lu, nexus, aborted }, params, destination, op),
    );
  },
});

/** sbc3r35 block device zero ROD token: zeros over every range (WRITE SAME of a zero block). */
async function writeZeros(lu: LogicalUnit, destination: readonly CheckedRange[], op: TokenOperation): Promise<void> {
  const zero = Buffer.alloc(lu.blockSize);
  for (const d of destination) {
    await lu.volume.writeSame({ offset: d.offset, length: d.length }, zero);
    op.blocks += BigInt(d.length / lu.blockSize);
  }
}

function throwIfInvalid(token: RodToken): void {
  if (token.fault) throw new ScsiError(token.fault);
}

async function writeFromToken(
  { lu, nexus, aborted }: { lu: LogicalUnit; nexus: ITNexus; aborted: () => boolean },
  params: WriteUsingTokenParams,
  destination: readonly CheckedRange[],
  op: TokenOperation,
): Promise<void> {
  const tokens = lu.target.rodTokens;
  const found = tokens.find(params.token);
  if (typeof found === 'string') throw new ScsiError(found);
  const token = found;
  tokens.use(token);
  try {
    // The source LU is read on behalf of this I_T nexus: its reservations apply (as for
    // EXTENDED COPY); the LU addressed was checked as 'write' by the pipeline.
    if (token.lu !== lu) token.lu.reservations.check(nexus, { reservation: 'read' });
    const pieces = planCopy(token, params, destination, lu);
    for (const piece of pieces) {
      // An aborted command stops between pieces: a LUN reset need not wait for the whole copy.
      if (aborted()) return;
      await copyRange(piece, (bytes) => {
        op.blocks += BigInt(bytes / lu.blockSize);
      });
      // A write to the token's data meanwhile cancelled it: what was copied may mix old
      // and new data, so the command fails (the destination is then undefined, as after any
      // failed copy).
      throwIfInvalid(token);
    }
  } finally {
    tokens.release(token);
    if (params.deleteToken) tokens.delete(token);
  }
}

/**
 * The copies a WRITE USING TOKEN makes: the token's source ranges as one byte stream from
 * BLOCK OFFSET INTO ROD (in blocks of this LU), laid over the destination ranges in order.
 */
function planCopy(token: RodToken, params: WriteUsingTokenParams, destination: readonly CheckedRange[], lu: LogicalUnit): CopyRange[] {
  const skip = params.offsetIntoRod * BigInt(lu.blockSize);
  // An offset at or past the end of the ROD (classpnp's list of INVALID FIELD IN PARAMETER LIST causes).
  if (skip >= BigInt(token.length)) throw invalidParamField(8);
  const wanted = destination.reduce((n, d) => n + d.length, 0);
  if (wanted > token.length - Number(skip)) throw new ScsiError('CopyTargetDataUnderrun');
  // Writing the token's own data would cancel the token halfway through its own copy.
  if (token.lu === lu) {
    const hit = destination.find((d) => token.ranges.some((s) => s.offset < d.offset + d.length && d.offset < s.offset + s.length));
    if (hit) throw invalidParamField(hit.descriptor.at);
  }
  const pieces: CopyRange[] = [];
  let source = 0;
  let into = Number(skip);
  while (into >= token.ranges[source].length) into -= token.ranges[source++].length;
  for (const d of destination) {
    for (let done = 0; done < d.length; ) {
      const s = token.ranges[source];
      invariant(s !== undefined, () => 'WRITE USING TOKEN ran past the ROD after the length check');
      const length = Math.min(s.length - into, d.length - done);
      pieces.push({ source: token.lu.volume, destination: lu.volume, sourceOffset: s.offset + into, destinationOffset: d.offset + done, length });
      done += length;
      into += length;
      if (into === s.length) {
        source++;
        into = 0;
      }
    }
  }
  // With different block sizes a piece could start inside a source block; volumes take whole blocks.
  const sbs = token.lu.blockSize;
  if (pieces.some((p) => p.sourceOffset % sbs !== 0 || p.length % sbs !== 0)) throw invalidParamField(params.listLengthField);
  return pieces;
}

export const ODX_COMMANDS: readonly Command<LogicalUnit>[] = [POPULATE_TOKEN, WRITE_USING_TOKEN];
