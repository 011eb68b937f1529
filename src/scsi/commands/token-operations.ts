import { be, checkControlByte, truncate } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField, ScsiError } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import type { ITNexus } from '../nexus';
import { buildSense } from '../sense';
import { heldResults } from './held-results';

/** The service action of the command an operation record answers for (RESPONSE TO SERVICE ACTION). */
export const POPULATE_TOKEN_SA = 0x10;
export const WRITE_USING_TOKEN_SA = 0x11;

/** A POPULATE TOKEN or WRITE USING TOKEN as RECEIVE ROD TOKEN INFORMATION reports it. */
export interface TokenOperation {
  readonly serviceAction: typeof POPULATE_TOKEN_SA | typeof WRITE_USING_TOKEN_SA;
  state: 'running' | 'done' | 'failed';
  /** Logical blocks of the LU addressed: represented by the token, or written. */
  blocks: bigint;
  /** The ROD token a POPULATE TOKEN made. */
  token?: Buffer;
  /** Sense data of a failed operation (spc4r37: returned in the SENSE DATA field). */
  sense?: Buffer;
}

/** Results held per I_T nexus: Windows never reads those of a WRITE USING TOKEN that succeeded. */
const HELD_PER_NEXUS = 256;

/** Operations by LU, I_T nexus and 32-bit LIST IDENTIFIER (held-results.ts). */
const operationsOf = heldResults<TokenOperation>();

/**
 * Records a new operation under `listId`. A list identifier whose operation is still running
 * on this nexus is OPERATION IN PROGRESS (spc4r37, copy operation identification; classpnp
 * maps it to STATUS_OPERATION_IN_PROGRESS); one whose operation ended is reused, and its held
 * results go.
 */
export function beginOperation(lu: LogicalUnit, nexus: ITNexus, listId: number, serviceAction: TokenOperation['serviceAction']): TokenOperation {
  const ops = operationsOf(lu, nexus);
  if (ops.get(listId)?.state === 'running') throw new ScsiError('OperationInProgress');
  ops.delete(listId);
  if (ops.size >= HELD_PER_NEXUS) {
    for (const [id, op] of ops) {
      if (op.state === 'running') continue;
      ops.delete(id);
      break;
    }
  }
  const op: TokenOperation = { serviceAction, state: 'running', blocks: 0n };
  ops.set(listId, op);
  return op;
}

/** Marks the operation failed with what `e` says (sense data when it is a SCSI failure). */
export function failOperation(op: TokenOperation, e: unknown, descriptorSense: boolean): void {
  op.state = 'failed';
  if (e instanceof ScsiError) op.sense = buildSense(e.reason, descriptorSense, e.detail);
}

/** spc4r37 COPY OPERATION STATUS codes. */
const COPY_OPERATION_STATUS = {
  running: 0x11, // operation in progress, foreground
  done: 0x01, // completed without errors
  failed: 0x02, // completed with errors
} as const;

/** spc4r37 TRANSFER COUNT UNITS F1h: logical blocks of the LU addressed (classpnp asserts it). */
const UNITS_LOGICAL_BLOCKS = 0xf1;

/**
 * RECEIVE ROD TOKEN INFORMATION parameter data (spc4r37): the RECEIVE COPY STATUS(LID4) header,
 * the sense data of a failed operation, then the ROD token descriptors: for a POPULATE TOKEN
 * that made one, 2 reserved bytes and the 512-byte token (ROD TOKEN DESCRIPTORS LENGTH 514,
 * which classpnp checks exactly); none otherwise.
 */
export function tokenInformation(op: TokenOperation): Buffer {
  const sense = op.sense ?? Buffer.alloc(0);
  const descriptors = op.token ? Buffer.concat([Buffer.alloc(2), op.token]) : Buffer.alloc(0);
  const d = Buffer.alloc(32 + sense.length + 4 + descriptors.length);
  d.writeUInt32BE(d.length - 4, 0); // AVAILABLE DATA
  d[4] = op.serviceAction; // RESPONSE TO SERVICE ACTION
  d[5] = COPY_OPERATION_STATUS[op.state];
  // OPERATION COUNTER (6-7): zero. ESTIMATED STATUS UPDATE DELAY: none once it has ended.
  d.writeUInt32BE(op.state === 'running' ? 1000 : 0xffffffff, 8);
  d[12] = op.state === 'failed' ? 0x02 : 0x00; // EXTENDED COPY COMPLETION STATUS: CHECK CONDITION or GOOD
  d[13] = sense.length; // LENGTH OF THE SENSE DATA FIELD
  d[14] = sense.length; // SENSE DATA LENGTH
  d[15] = UNITS_LOGICAL_BLOCKS;
  d.writeBigUInt64BE(op.blocks, 16); // TRANSFER COUNT
  // SEGMENTS PROCESSED (24-25): zero for token operations (classpnp asserts it).
  sense.copy(d, 32);
  d.writeUInt32BE(descriptors.length, 32 + sense.length); // ROD TOKEN DESCRIPTORS LENGTH
  descriptors.copy(d, 36 + sense.length);
  return d;
}

/**
 * spc4r37 RECEIVE ROD TOKEN INFORMATION (84h/07h): LIST IDENTIFIER in bytes 2-5, ALLOCATION
 * LENGTH in 10-13. The results of the operation this I_T nexus started under that list
 * identifier; a list identifier with none (or another nexus's) is an invalid CDB field, which
 * classpnp reads as a mismatched I_T nexus. Results that fit the allocation length are
 * reported once, then discarded (FreeBSD CTL does the same), so the table stays small.
 */
export const RECEIVE_ROD_TOKEN_INFORMATION: Command<LogicalUnit> = defineCommand({
  name: 'RECEIVE ROD TOKEN INFORMATION',
  opcode: 0x84,
  serviceAction: 0x07,
  cdbLength: 16,
  usage: [0x84, 0x1f, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  reservation: 'read',
  decode(cdb) {
    checkControlByte(cdb.subarray(0, 16));
    const allocationLength = be.u32(cdb, 10);
    return { listId: be.u32(cdb, 2), allocationLength, dataOutLength: 0, transferLength: allocationLength };
  },
  execute({ lu, nexus }, r) {
    const ops = operationsOf(lu, nexus);
    const op = ops.get(r.listId);
    if (!op) throw invalidCdbField(2);
    const data = tokenInformation(op);
    if (op.state !== 'running' && data.length <= r.allocationLength) ops.delete(r.listId);
    return truncate(data, r.allocationLength);
  },
});
