import type { Connection } from '../connection';
import { RejectReason } from '../errors';
import type { ReceivedFrame } from '../framer';
import { encodeNopIn, type NopOutPdu } from '../pdu/nop';
import { RESERVED_TAG } from '../pdu/opcodes';
import type { Session } from '../session';
import { inOrder } from './order';

/** RFC 7143 §11.18: NOP-Out. A ping (ITT set) is answered with a NOP-In echoing its data. */
export function handleNopOut(conn: Connection, session: Session, pdu: NopOutPdu, frame: ReceivedFrame): void {
  if (pdu.itt === RESERVED_TAG) {
    // An answer to our NOP-In (its TTT) or a one-way ping: no response, no CmdSN (§11.18.1).
    if (conn.ping && pdu.ttt === conn.ping.ttt) conn.ping = undefined;
    return;
  }
  inOrder(session, pdu, () => {
    if (frame.dataDigestError) {
      conn.reject(RejectReason.DataDigestError, frame.bhs);
      return;
    }
    const max = conn.params.maxXmitDataSegmentLength;
    conn.send(
      encodeNopIn({
        lun: pdu.lun,
        itt: pdu.itt,
        ttt: RESERVED_TAG,
        statSN: conn.nextStatSN(),
        expCmdSN: session.expCmdSN,
        maxCmdSN: session.maxCmdSN,
        data: pdu.data.length > max ? pdu.data.subarray(0, max) : pdu.data,
      }),
    );
  });
}
