import type { Session } from '../session';

/**
 * Delivers a PDU that carries a CmdSN: immediate ones at once (RFC 7143 §3.2.2.1: they do not
 * advance ExpCmdSN), the rest in CmdSN order within the window; anything outside the window
 * is silently ignored.
 */
export function inOrder(session: Session, pdu: { readonly immediate: boolean; readonly cmdSN: number }, run: () => void): void {
  if (pdu.immediate) {
    run();
    return;
  }
  session.accept(pdu.cmdSN, run);
}
