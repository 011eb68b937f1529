import type { LeaseRecord } from '../lease-record';
import { type JournalRecord, uuidHex } from './record';

/**
 * Whether a LUN's recovered journal records may be replayed over what is in S3
 * (docs/journal.md). They may if every holder they were written under is vouched for by the
 * lease this process took over: its last holder, or a holder that one vouched for. Anyone
 * else may have written the LUN since, so their records could be older than S3's data.
 *
 * In a cluster (docs/ha.md) a holder's vouches name records on its own node: another node
 * trusts only the last holder itself. Records of a holder the lease chain lists as covered (a
 * takeover applied them from its replica) are superseded copies: they are dropped.
 */
export type ReplayDecision =
  | { readonly replay: true; readonly vouches: readonly string[]; readonly drop: readonly string[] }
  | { readonly replay: false; readonly unknown: readonly string[]; readonly why: string };

/** The holders a lease record vouches for, to a process of `node` (32 hex digits each). */
export function vouchedBy(previous: LeaseRecord | undefined, node?: string): Set<string> {
  if (!previous) return new Set();
  const elsewhere = previous.node !== undefined && node !== undefined && previous.node !== node;
  return new Set([previous.holder, ...(elsewhere ? [] : (previous.vouches ?? []))].map(uuidHex));
}

export function replayDecision(
  records: ReadonlyArray<Pick<JournalRecord, 'holder'>>,
  previous: LeaseRecord | undefined,
  node?: string,
): ReplayDecision {
  const holders = [...new Set(records.map((r) => uuidHex(r.holder)))];
  const vouched = vouchedBy(previous, node);
  const covered = new Set((previous?.covered ?? []).map(uuidHex));
  const drop = holders.filter((h) => !vouched.has(h) && covered.has(h));
  const unknown = holders.filter((h) => !vouched.has(h) && !covered.has(h));
  if (unknown.length === 0) return { replay: true, vouches: holders.filter((h) => vouched.has(h)), drop };
  const why = previous
    ? `the LUN's lease was last held by ${previous.holder} (${previous.host} pid ${previous.pid}), which does not vouch for the journal's writer(s) ${unknown.join(', ')}: another server may have written the LUN since`
    : `the LUN had no lease when this server started, so the journal's writer(s) ${unknown.join(', ')} may have been followed by another server`;
  return { replay: false, unknown, why };
}
