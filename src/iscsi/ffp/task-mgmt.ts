import type { TmfFunction, TmfResult } from '../../scsi/target';
import { log } from '../../util/log';
import { type Connection, endSession } from '../connection';
import { encodeTaskMgmtResponse, TmfFunction as Fn, type TaskMgmtRequestPdu, TmfResponse } from '../pdu/task-mgmt';
import { sn } from '../serial';
import type { Session } from '../session';
import { inOrder } from './order';

const SCSI_FUNCTIONS: Readonly<Record<number, TmfFunction>> = {
  [Fn.AbortTask]: 'abort-task',
  [Fn.AbortTaskSet]: 'abort-task-set',
  [Fn.ClearTaskSet]: 'clear-task-set',
  [Fn.LogicalUnitReset]: 'lun-reset',
  [Fn.TargetWarmReset]: 'target-warm-reset',
  [Fn.TargetColdReset]: 'target-cold-reset',
  [Fn.QueryTask]: 'query-task',
  [Fn.QueryTaskSet]: 'query-task-set',
  [Fn.ITNexusReset]: 'it-nexus-reset',
};

const RESPONSES: Readonly<Record<TmfResult, number>> = {
  complete: TmfResponse.FunctionComplete,
  'no-task': TmfResponse.TaskDoesNotExist,
  'no-lun': TmfResponse.LunDoesNotExist,
  'not-supported': TmfResponse.NotSupported,
  succeeded: TmfResponse.FunctionSucceeded,
};

/**
 * RFC 7143 §11.5: task management. The response goes out only after every affected task has
 * really ended (SAM-5 §7.1), and aborted tasks never get a response of their own.
 */
export function handleTaskMgmt(conn: Connection, session: Session, pdu: TaskMgmtRequestPdu): void {
  inOrder(session, pdu, () => {
    void perform(conn, session, pdu)
      .catch((e: unknown) => {
        log.error('task management failed', { error: e instanceof Error ? e.message : String(e) });
        return TmfResponse.FunctionRejected as number;
      })
      .then((response) => {
        conn.send(
          encodeTaskMgmtResponse({
            response,
            itt: pdu.itt,
            statSN: conn.nextStatSN(),
            expCmdSN: session.expCmdSN,
            maxCmdSN: session.maxCmdSN,
          }),
        );
        if (pdu.func === Fn.TargetColdReset && response === TmfResponse.FunctionComplete) {
          // §11.5.1: after a cold reset the target drops every connection of the target.
          for (const s of conn.ctx.sessions.all()) if (s.target && s.target === session.target) endSession(s, conn.ctx, 'target cold reset');
        }
      });
  });
}

async function perform(conn: Connection, session: Session, pdu: TaskMgmtRequestPdu): Promise<number> {
  const target = session.target;
  const nexus = session.nexus;
  if (!target || !nexus) return TmfResponse.FunctionRejected;
  log.info('task management', { peer: conn.peer, tsih: session.tsih, function: pdu.func, referenced: pdu.referencedTaskTag });
  if (pdu.func === Fn.TaskReassign) return TmfResponse.ReassignmentNotSupported;
  const fn = SCSI_FUNCTIONS[pdu.func];
  if (!fn) return TmfResponse.NotSupported;
  if (fn === 'abort-task' || fn === 'query-task') {
    const task = session.tasks.get(pdu.referencedTaskTag);
    if (!task) {
      // §11.5.1: a task whose command has not arrived yet (RefCmdSN inside the window and
      // before this request) counts as received and aborted: the hole it leaves is skipped.
      const inWindow = sn.lte(session.expCmdSN, pdu.refCmdSN) && sn.lte(pdu.refCmdSN, session.maxCmdSN);
      if (fn === 'abort-task' && inWindow && (pdu.immediate || sn.lt(pdu.refCmdSN, pdu.cmdSN))) {
        session.early.delete(pdu.refCmdSN);
        if (pdu.refCmdSN === session.expCmdSN) session.accept(pdu.refCmdSN, () => undefined);
        else session.abortedCmdSNs.add(pdu.refCmdSN);
        return TmfResponse.FunctionComplete;
      }
      // A task that already completed (its CmdSN is below ExpCmdSN, outside the window) or was
      // never sent: Task does not exist (§11.5.1 c). Its status went out before this answer on
      // the same connection, so the initiator has it. libiscsi's iSCSITMF.AbortTaskSimpleAsync
      // checks exactly this (GOOD then "does not exist", never GOOD then Function Complete),
      // and LIO answers the same.
      return fn === 'query-task' ? TmfResponse.FunctionComplete : TmfResponse.TaskDoesNotExist;
    }
    return RESPONSES[await target.scsi.manage(fn, nexus, task.pdu.lun, task.itt)];
  }
  return RESPONSES[await target.scsi.manage(fn, nexus, pdu.lun, pdu.itt)];
}
