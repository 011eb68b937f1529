import type { Connection } from '../connection';
import { PduError, RejectReason } from '../errors';
import type { ReceivedFrame } from '../framer';
import { parseNumber } from '../login/keys';
import { MAX_TEXT_BYTES, parseText, serializeText } from '../login/text-codec';
import { RESERVED_TAG } from '../pdu/opcodes';
import { encodeTextResponse, type TextRequestPdu } from '../pdu/text';
import type { Session } from '../session';
import { formatTargetAddress, type IscsiTargetEntry } from '../target-entry';
import { inOrder } from './order';

/**
 * RFC 7143 §11.10, §11.11: Text requests in the full feature phase — SendTargets discovery
 * (Appendix C) and the few keys that may change after login. Long requests and responses
 * travel in pieces with the C bit and a Target Transfer Tag.
 */
export function handleText(conn: Connection, session: Session, pdu: TextRequestPdu, frame: ReceivedFrame): void {
  inOrder(session, pdu, () => {
    if (frame.dataDigestError) {
      conn.reject(RejectReason.DataDigestError, frame.bhs);
      return;
    }
    const reply = (text: Buffer, cont: boolean, ttt: number): void =>
      conn.send(
        encodeTextResponse({
          final: !cont && ttt === RESERVED_TAG,
          cont,
          lun: pdu.lun,
          itt: pdu.itt,
          ttt,
          statSN: conn.nextStatSN(),
          expCmdSN: session.expCmdSN,
          maxCmdSN: session.maxCmdSN,
          data: text,
        }),
      );
    // The initiator asks for the next piece of a long response.
    if (pdu.ttt !== RESERVED_TAG && conn.textOut && pdu.data.length === 0) {
      const out = conn.textOut;
      if (out.ttt !== pdu.ttt || out.itt !== pdu.itt) {
        conn.reject(RejectReason.InvalidPduField, frame.bhs);
        return;
      }
      sendPieces(conn, out.rest, pdu.itt, reply);
      return;
    }
    conn.textOut = undefined;
    // A request in pieces: keep them (bounded) and acknowledge each with an empty response.
    const prior = conn.textIn && conn.textIn.itt === pdu.itt && conn.textIn.ttt === pdu.ttt ? conn.textIn : undefined;
    const parts = prior ? [...prior.parts, pdu.data] : [pdu.data];
    const bytes = (prior?.bytes ?? 0) + pdu.data.length;
    if (bytes > MAX_TEXT_BYTES) throw new PduError('ISCSI_ERR_TEXT', 'text request too long', RejectReason.ProtocolError);
    if (pdu.cont) {
      const ttt = conn.allocTtt();
      conn.textIn = { itt: pdu.itt, ttt, parts, bytes };
      reply(Buffer.alloc(0), false, ttt);
      return;
    }
    conn.textIn = undefined;
    const pairs = parseText(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    const out: Array<[string, string]> = [];
    for (const [key, value] of pairs) {
      if (key === 'SendTargets') out.push(...sendTargets(conn, session, value));
      else if (key === 'MaxRecvDataSegmentLength') {
        // §13.12: a declaration that may change in the full feature phase.
        const n = parseNumber(value);
        if (n === undefined || n < 512 || n > 16777215) out.push([key, 'Reject']);
        else conn.params.maxXmitDataSegmentLength = n;
      } else out.push([key, 'NotUnderstood']);
    }
    sendPieces(conn, serializeText(out), pdu.itt, reply);
  });
}

function sendPieces(conn: Connection, text: Buffer, itt: number, reply: (t: Buffer, cont: boolean, ttt: number) => void): void {
  const max = conn.params.maxXmitDataSegmentLength;
  if (text.length <= max) {
    conn.textOut = undefined;
    reply(text, false, RESERVED_TAG);
    return;
  }
  const ttt = conn.allocTtt();
  conn.textOut = { itt, ttt, rest: text.subarray(max) };
  reply(text.subarray(0, max), true, ttt);
}

/**
 * RFC 7143 Appendix C: SendTargets=All lists every target the initiator may see (in a
 * discovery session); an empty value or a target name lists that target.
 */
function sendTargets(conn: Connection, session: Session, value: string): Array<[string, string]> {
  const dir = conn.ctx.directory;
  const address = conn.remoteAddress;
  let targets: readonly IscsiTargetEntry[];
  if (value === 'All' && session.type === 'Discovery') targets = dir.list();
  else if (value === '' || value === 'All') targets = session.target ? [session.target] : [];
  else {
    const t = dir.find(value);
    targets = t ? [t] : [];
  }
  const out: Array<[string, string]> = [];
  for (const t of targets) {
    if (!t.visibleTo(session.initiatorName, address)) continue;
    out.push(['TargetName', t.iqn]);
    for (const p of dir.portals) out.push(['TargetAddress', formatTargetAddress(p, t.portalGroupTag)]);
    for (const g of dir.otherPortalGroups ?? []) for (const p of g.portals) out.push(['TargetAddress', formatTargetAddress(p, g.tpgt)]);
  }
  return out;
}
