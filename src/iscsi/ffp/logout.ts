import { log } from '../../util/log';
import { type Connection, endSession } from '../connection';
import { encodeLogoutResponse, LogoutReason, type LogoutRequestPdu, LogoutResponseCode } from '../pdu/logout';
import type { Session } from '../session';
import { inOrder } from './order';

/** How long a logout waits for the session's running commands before answering anyway. */
const LOGOUT_DRAIN_MS = 30_000;

/**
 * RFC 7143 §11.14: Logout. Closing the session or this connection waits for the commands in
 * flight, answers, and closes; connection recovery (reason 2) needs ERL 2.
 */
export function handleLogout(conn: Connection, session: Session, pdu: LogoutRequestPdu): void {
  inOrder(session, pdu, () => {
    const respond = (response: number): void =>
      conn.send(
        encodeLogoutResponse({
          response,
          itt: pdu.itt,
          statSN: conn.nextStatSN(),
          expCmdSN: session.expCmdSN,
          maxCmdSN: session.maxCmdSN,
          time2Wait: 0,
          time2Retain: 0,
        }),
      );
    if (pdu.reason === LogoutReason.RemoveConnectionForRecovery) {
      respond(LogoutResponseCode.RecoveryNotSupported);
      return;
    }
    if (pdu.reason === LogoutReason.CloseConnection && pdu.cid !== conn.cid) {
      respond(LogoutResponseCode.CidNotFound);
      return;
    }
    session.loggingOut = true;
    const running = [...session.tasks.values()].map((t) => t.done);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => {
      timer = setTimeout(r, LOGOUT_DRAIN_MS);
    });
    void Promise.race([Promise.all(running), timeout]).then(() => {
      clearTimeout(timer);
      respond(LogoutResponseCode.Success);
      conn.state = 'logged-out';
      log.info('logout', {
        peer: conn.peer,
        tsih: session.tsih,
        reason: pdu.reason === LogoutReason.CloseSession ? 'close session' : 'close connection',
      });
      // With one connection per session, closing it closes the session either way.
      endSession(session, conn.ctx, 'logout');
    });
  });
}
