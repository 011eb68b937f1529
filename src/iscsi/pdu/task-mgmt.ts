import { expectNoData, type Frame, immediateOf, newBhs, type OutFrame } from './frame';
import { Op } from './opcodes';

/** RFC 7143 §11.5.1 (and RFC 7144 §4.1 for 9-12): task management function codes. */
export const TmfFunction = {
  AbortTask: 1,
  AbortTaskSet: 2,
  ClearAca: 3,
  ClearTaskSet: 4,
  LogicalUnitReset: 5,
  TargetWarmReset: 6,
  TargetColdReset: 7,
  TaskReassign: 8,
  QueryTask: 9,
  QueryTaskSet: 10,
  ITNexusReset: 11,
  QueryAsyncEvent: 12,
} as const;

/** RFC 7143 §11.6.1 (RFC 7144 §4.2 adds 7/8): TMF response codes. */
export const TmfResponse = {
  FunctionComplete: 0,
  TaskDoesNotExist: 1,
  LunDoesNotExist: 2,
  TaskStillAllegiant: 3,
  ReassignmentNotSupported: 4,
  NotSupported: 5,
  AuthorizationFailed: 6,
  FunctionSucceeded: 7,
  FunctionRejected: 255,
} as const;

/** RFC 7143 §11.5: Task Management Function Request. */
export interface TaskMgmtRequestPdu {
  readonly kind: 'task-mgmt-request';
  readonly immediate: boolean;
  readonly func: number;
  readonly lun: bigint;
  readonly itt: number;
  readonly referencedTaskTag: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly refCmdSN: number;
  readonly expDataSN: number;
}

export function decodeTaskMgmtRequest(f: Frame): TaskMgmtRequestPdu {
  expectNoData(f, 'Task Management Function Request');
  const b = f.bhs;
  return {
    kind: 'task-mgmt-request',
    immediate: immediateOf(b),
    func: b[1] & 0x7f,
    lun: b.readBigUInt64BE(8),
    itt: b.readUInt32BE(16),
    referencedTaskTag: b.readUInt32BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
    refCmdSN: b.readUInt32BE(32),
    expDataSN: b.readUInt32BE(36),
  };
}

export function encodeTaskMgmtRequest(p: Omit<TaskMgmtRequestPdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.TaskMgmtRequest, 0x80 | (p.func & 0x7f), 0, p.immediate);
  bhs.writeBigUInt64BE(p.lun, 8);
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.referencedTaskTag, 20);
  bhs.writeUInt32BE(p.cmdSN, 24);
  bhs.writeUInt32BE(p.expStatSN, 28);
  bhs.writeUInt32BE(p.refCmdSN, 32);
  bhs.writeUInt32BE(p.expDataSN, 36);
  return { bhs };
}

/** RFC 7143 §11.6: Task Management Function Response. */
export interface TaskMgmtResponsePdu {
  readonly kind: 'task-mgmt-response';
  readonly response: number;
  readonly itt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
}

export function encodeTaskMgmtResponse(p: Omit<TaskMgmtResponsePdu, 'kind'>): OutFrame {
  const bhs = newBhs(Op.TaskMgmtResponse, 0x80, 0);
  bhs[2] = p.response;
  bhs.writeUInt32BE(p.itt, 16);
  bhs.writeUInt32BE(p.statSN, 24);
  bhs.writeUInt32BE(p.expCmdSN, 28);
  bhs.writeUInt32BE(p.maxCmdSN, 32);
  return { bhs };
}

export function decodeTaskMgmtResponse(f: Frame): TaskMgmtResponsePdu {
  const b = f.bhs;
  return {
    kind: 'task-mgmt-response',
    response: b[2],
    itt: b.readUInt32BE(16),
    statSN: b.readUInt32BE(24),
    expCmdSN: b.readUInt32BE(28),
    maxCmdSN: b.readUInt32BE(32),
  };
}
