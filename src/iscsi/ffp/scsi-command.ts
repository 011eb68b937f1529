import type { Outcome } from '../../scsi/command';
import { ScsiStatus, TaskAttribute } from '../../scsi/status';
import { log } from '../../util/log';
import type { Connection } from '../connection';
import { PduError, RejectReason } from '../errors';
import type { ReceivedFrame } from '../framer';
import { encodeDataIn } from '../pdu/data-in';
import type { DataOutPdu } from '../pdu/data-out';
import { encodeR2T } from '../pdu/r2t';
import { type ScsiCommandPdu, TaskAttr } from '../pdu/scsi-command';
import { encodeScsiResponse, NO_RESIDUAL, type Residual, ServiceResponse } from '../pdu/scsi-response';
import type { Session } from '../session';
import { IscsiTask } from '../task';
import { inOrder } from './order';

const ATTRIBUTES: Record<number, TaskAttribute> = {
  [TaskAttr.Untagged]: TaskAttribute.Simple,
  [TaskAttr.Simple]: TaskAttribute.Simple,
  [TaskAttr.Ordered]: TaskAttribute.Ordered,
  [TaskAttr.HeadOfQueue]: TaskAttribute.HeadOfQueue,
  [TaskAttr.Aca]: TaskAttribute.Aca,
};

/** RFC 7143 §11.3: a SCSI Command, delivered in CmdSN order. */
export function handleScsiCommand(conn: Connection, session: Session, pdu: ScsiCommandPdu, frame: ReceivedFrame): void {
  inOrder(session, pdu, () => {
    if (session.loggingOut) {
      conn.reject(RejectReason.WaitingForLogout, frame.bhs);
      return;
    }
    if (pdu.immediate && !session.immediateRoom) {
      conn.reject(RejectReason.ImmediateCommandReject, frame.bhs);
      return;
    }
    if (session.tasks.has(pdu.itt)) {
      conn.reject(RejectReason.InvalidPduField, frame.bhs);
      return;
    }
    const target = session.target;
    const nexus = session.nexus;
    if (!target || !nexus) throw new PduError('ISCSI_ERR_SEQUENCE', 'SCSI command outside a normal session');
    const attribute = ATTRIBUTES[pdu.attr];
    const scsi = target.scsi.submit({
      nexus,
      lun: pdu.lun,
      cdb: pdu.cdb,
      tag: pdu.itt,
      attribute: attribute ?? TaskAttribute.Simple,
      dataOutBufferSize: pdu.write ? pdu.expectedDataLength : 0,
    });
    let task: IscsiTask;
    try {
      task = new IscsiTask(pdu, scsi, session.params);
    } catch (e) {
      scsi.cancel();
      throw e;
    }
    task.hold(frame.pooled);
    // RFC 7143 §7.8: bad immediate data is answered with a Reject (Data-Digest-Error); the
    // command itself is kept and ends with a CRC error once all its data is in (option b).
    if (frame.dataDigestError) {
      conn.reject(RejectReason.DataDigestError, frame.bhs);
      task.digestFailed = true;
    }
    session.tasks.set(pdu.itt, task);
    scsi.onAbort(() => abortTransport(conn, session, task));
    progress(conn, session, task);
  });
}

/** RFC 7143 §11.7: Data-Out for a task that is collecting data. */
export function handleDataOut(conn: Connection, session: Session, d: DataOutPdu, frame: ReceivedFrame): void {
  const task = session.tasks.get(d.itt);
  if (!task || task.aborted || task.finished || task.executing) {
    // Late data for a task we already ended (error response, abort): drop it silently.
    log.debug('Data-Out for an inactive task', { itt: d.itt });
    return;
  }
  if (frame.dataDigestError) {
    conn.reject(RejectReason.DataDigestError, frame.bhs);
    task.digestFailed = true;
  }
  task.hold(frame.pooled);
  try {
    task.onDataOut(d);
  } catch (e) {
    if (!(e instanceof PduError)) throw e;
    // ERL 0 has no within-command recovery: the command ends with a data phase error.
    log.warn('Data-Out sequence error', { peer: conn.peer, itt: d.itt, error: e.message });
    execute(conn, session, task, 'DataPhaseError');
    return;
  }
  progress(conn, session, task);
}

/** Moves a task on: execute once its data is in, else solicit more. */
function progress(conn: Connection, session: Session, task: IscsiTask): void {
  if (task.aborted || task.finished || task.executing) return;
  if (task.dataComplete) {
    execute(conn, session, task, task.digestFailed ? 'ProtocolServiceCrcError' : undefined);
    return;
  }
  sendR2Ts(conn, session, task);
}

/** Sends the R2Ts a task may have open, within the connection's solicited-bytes budget. */
function sendR2Ts(conn: Connection, session: Session, task: IscsiTask): void {
  const budget = conn.ctx.options.maxSolicitedBytes;
  if (task.solicited === 0 && conn.solicitedBytes > 0 && conn.solicitedBytes + Math.min(task.wanted, session.params.maxBurstLength) > budget) {
    conn.r2tWaiting.add(task);
    return;
  }
  const r2ts = task.nextR2Ts(session.params, () => conn.allocTtt());
  if (r2ts.length === 0) return;
  conn.batch(() => {
    for (const r of r2ts) {
      task.solicited += r.length;
      conn.solicitedBytes += r.length;
      conn.send(
        encodeR2T({
          lun: task.pdu.lun,
          itt: task.itt,
          ttt: r.ttt,
          statSN: conn.currentStatSN,
          expCmdSN: session.expCmdSN,
          maxCmdSN: session.maxCmdSN,
          r2tSN: r.r2tSN,
          bufferOffset: r.offset,
          desiredLength: r.length,
        }),
      );
    }
  });
}

function releaseBudget(conn: Connection, session: Session, task: IscsiTask): void {
  conn.solicitedBytes -= task.solicited;
  task.solicited = 0;
  conn.r2tWaiting.delete(task);
  for (const waiting of [...conn.r2tWaiting]) {
    conn.r2tWaiting.delete(waiting);
    if (!waiting.aborted && !waiting.finished) sendR2Ts(conn, session, waiting);
  }
}

function execute(conn: Connection, session: Session, task: IscsiTask, failure?: 'DataPhaseError' | 'ProtocolServiceCrcError'): void {
  task.executing = true;
  // Data-In is held in memory until it is sent: reads take their size from the connection's
  // budget before they run, so one initiator cannot make us hold unbounded read buffers.
  const readBytes = task.pdu.read ? Math.min(task.pdu.expectedDataLength, Math.max(task.scsi.transferLength, 0)) : 0;
  const admitted = readBytes > 0 && !failure ? conn.readBudget.acquire(readBytes) : Promise.resolve();
  const run = admitted.then(() => (failure ? task.scsi.fail(failure) : task.scsi.execute(task.wanted > 0 ? task.data() : undefined)));
  run
    .finally(() => {
      if (readBytes > 0 && !failure) conn.readBudget.release(readBytes);
      // Nothing refers to the Data-Out any more once the command has executed.
      task.releaseData();
    })
    .then((outcome) => {
      if (session.tasks.get(task.itt) === task) session.tasks.delete(task.itt);
      releaseBudget(conn, session, task);
      if (outcome && !task.aborted && !session.closed) respond(conn, session, task, outcome);
      else outcome?.release?.();
      task.finish();
    })
    .catch((e: unknown) => {
      log.error('command pipeline failed', { error: e instanceof Error ? e.stack : String(e) });
      task.finish();
      conn.close('internal error');
    });
}

/** An aborted task stops collecting data; its response is never sent (SAM-5 §7.2). */
function abortTransport(conn: Connection, session: Session, task: IscsiTask): void {
  task.aborted = true;
  if (!task.executing) {
    task.releaseData();
    task.scsi.cancel();
    if (session.tasks.get(task.itt) === task) session.tasks.delete(task.itt);
    releaseBudget(conn, session, task);
    task.finish();
  }
}

/**
 * RFC 7143 §11.4.5: residuals compare the initiator's Expected Data Transfer Length with what
 * the command moves: the data a read produced, or the transfer length the CDB describes.
 */
function residualOf(task: IscsiTask, outcome: Outcome): Residual {
  const pdu = task.pdu;
  const edtl = pdu.read || pdu.write ? pdu.expectedDataLength : 0;
  const spdtl = outcome.data !== undefined ? outcome.data.length : task.scsi.transferLength;
  if (spdtl === edtl) return NO_RESIDUAL;
  return spdtl > edtl ? { overflow: true, underflow: false, count: spdtl - edtl } : { overflow: false, underflow: true, count: edtl - spdtl };
}

/**
 * Sends the result: Data-In PDUs of at most MaxRecvDataSegmentLength, F at each MaxBurstLength
 * boundary, and the status in the last Data-In when it carries no sense (RFC 7143 §11.7.4);
 * otherwise a SCSI Response.
 */
function respond(conn: Connection, session: Session, task: IscsiTask, outcome: Outcome): void {
  const pdu = task.pdu;
  const residual = residualOf(task, outcome);
  const data = outcome.data;
  const toSend = data && pdu.read ? Math.min(data.length, pdu.expectedDataLength) : 0;
  const collapse = toSend > 0 && outcome.status === ScsiStatus.Good && !outcome.sense;
  const maxSeg = conn.params.maxXmitDataSegmentLength;
  const maxBurst = session.params.maxBurstLength;
  conn.batch(() => {
    let burst = 0;
    for (let off = 0; off < toSend; ) {
      const len = Math.min(maxSeg, toSend - off, maxBurst - burst);
      const last = off + len === toSend;
      burst += len;
      const endOfBurst = burst === maxBurst;
      if (endOfBurst) burst = 0;
      conn.send(
        encodeDataIn({
          final: last || endOfBurst,
          lun: pdu.lun,
          itt: pdu.itt,
          dataSN: task.dataInCount++,
          bufferOffset: off,
          expCmdSN: session.expCmdSN,
          maxCmdSN: session.maxCmdSN,
          ...(last && collapse ? { status: { status: outcome.status, statSN: conn.nextStatSN(), residual } } : {}),
          data: (data as Buffer).subarray(off, off + len),
        }),
        // Writes to the socket complete in order: the last Data-In done means all are.
        last ? outcome.release : undefined,
      );
      off += len;
    }
    if (toSend === 0) outcome.release?.();
    if (!collapse) {
      conn.send(
        encodeScsiResponse({
          response: ServiceResponse.CommandCompleted,
          status: outcome.status,
          itt: pdu.itt,
          statSN: conn.nextStatSN(),
          expCmdSN: session.expCmdSN,
          maxCmdSN: session.maxCmdSN,
          expDataSN: task.dataInCount,
          residual,
          sense: outcome.sense ?? EMPTY,
        }),
      );
    }
  });
}

const EMPTY = Buffer.alloc(0);
