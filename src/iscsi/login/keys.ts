import type { SessionParams, TargetLimits } from './params';

/**
 * RFC 7143 §13: how each key is negotiated. A key's `rule` decides the answer the target
 * (always the responder here) gives; `apply` stores the outcome.
 */
export type KeyRule =
  | { readonly type: 'bool'; readonly fn: 'or' | 'and'; readonly ours: (l: TargetLimits) => boolean }
  | {
      readonly type: 'number';
      readonly fn: 'min' | 'max';
      readonly lo: number;
      readonly hi: number;
      readonly ours: (l: TargetLimits) => number;
    }
  | { readonly type: 'list'; readonly ours: (l: TargetLimits) => readonly string[] };

export interface SessionKey {
  readonly rule: KeyRule;
  readonly apply: (p: SessionParams, value: string) => void;
}

const yes = (v: string): boolean => v === 'Yes';

/** Leading-only, session-wide keys (RFC 7143 §13.8-§13.20, §13.23-§13.24). */
export const SESSION_KEYS: Readonly<Record<string, SessionKey>> = {
  // §13.10: OR: a Yes from either side requires R2T for the first burst.
  InitialR2T: { rule: { type: 'bool', fn: 'or', ours: (l) => l.initialR2T }, apply: (p, v) => void (p.initialR2T = yes(v)) },
  // §13.11: AND.
  ImmediateData: { rule: { type: 'bool', fn: 'and', ours: (l) => l.immediateData }, apply: (p, v) => void (p.immediateData = yes(v)) },
  // §13.13: min, 512..2^24-1.
  MaxBurstLength: {
    rule: { type: 'number', fn: 'min', lo: 512, hi: 16777215, ours: (l) => l.maxBurstLength },
    apply: (p, v) => void (p.maxBurstLength = Number(v)),
  },
  // §13.14: min, 512..2^24-1, and never above MaxBurstLength (enforced after login).
  FirstBurstLength: {
    rule: { type: 'number', fn: 'min', lo: 512, hi: 16777215, ours: (l) => l.firstBurstLength },
    apply: (p, v) => void (p.firstBurstLength = Number(v)),
  },
  // §13.15: max.
  DefaultTime2Wait: {
    rule: { type: 'number', fn: 'max', lo: 0, hi: 3600, ours: (l) => l.defaultTime2Wait },
    apply: (p, v) => void (p.defaultTime2Wait = Number(v)),
  },
  // §13.16: min.
  DefaultTime2Retain: {
    rule: { type: 'number', fn: 'min', lo: 0, hi: 3600, ours: (l) => l.defaultTime2Retain },
    apply: (p, v) => void (p.defaultTime2Retain = Number(v)),
  },
  // §13.17: min, 1..65535.
  MaxOutstandingR2T: {
    rule: { type: 'number', fn: 'min', lo: 1, hi: 65535, ours: (l) => l.maxOutstandingR2T },
    apply: (p, v) => void (p.maxOutstandingR2T = Number(v)),
  },
  // §13.18/§13.19: OR; we only implement in-order delivery, so we answer Yes.
  DataPDUInOrder: { rule: { type: 'bool', fn: 'or', ours: () => true }, apply: (p, v) => void (p.dataPDUInOrder = yes(v)) },
  DataSequenceInOrder: { rule: { type: 'bool', fn: 'or', ours: () => true }, apply: (p, v) => void (p.dataSequenceInOrder = yes(v)) },
  // §13.20: min; we implement level 0 only.
  ErrorRecoveryLevel: {
    rule: { type: 'number', fn: 'min', lo: 0, hi: 2, ours: () => 0 },
    apply: (p, v) => void (p.errorRecoveryLevel = Number(v)),
  },
  // §13.2: min; one connection per session (no MC/S).
  MaxConnections: {
    rule: { type: 'number', fn: 'min', lo: 1, hi: 65535, ours: () => 1 },
    apply: (p, v) => void (p.maxConnections = Number(v)),
  },
  // §13.23: we report tasks the RFC 3720 way only.
  TaskReporting: { rule: { type: 'list', ours: () => ['RFC3720'] }, apply: () => undefined },
  // §13.24: 1 = RFC 7143.
  iSCSIProtocolLevel: { rule: { type: 'number', fn: 'min', lo: 0, hi: 31, ours: () => 1 }, apply: () => undefined },
};

/** Keys that only the initiator declares; we take note and never answer (§6.2.1 declarative). */
export const INITIATOR_DECLARATIONS = new Set(['InitiatorName', 'InitiatorAlias', 'TargetName', 'SessionType', 'MaxRecvDataSegmentLength']);

/** Keys a target declares; an initiator sending them is a negotiation error (answered Reject). */
export const TARGET_ONLY_KEYS = new Set(['TargetAlias', 'TargetAddress', 'TargetPortalGroupTag']);

/**
 * RFC 7143 §13.26: markers are obsolete. For IFMarker/OFMarker we answer "No" (allowed, and what
 * open-iscsi expects); the *MarkInt keys MUST be answered "Reject".
 */
export const OBSOLETE_KEYS: Readonly<Record<string, string>> = {
  IFMarker: 'No',
  OFMarker: 'No',
  IFMarkInt: 'Reject',
  OFMarkInt: 'Reject',
};

/**
 * The answer to one offered value under its rule, or 'Reject' when the value is not valid for
 * the key (RFC 7143 §6.2: out-of-range or malformed values are answered with Reject).
 */
export function answer(rule: KeyRule, offered: string, limits: TargetLimits): string {
  switch (rule.type) {
    case 'bool': {
      if (offered !== 'Yes' && offered !== 'No') return 'Reject';
      const ours = rule.ours(limits);
      const theirs = offered === 'Yes';
      return (rule.fn === 'or' ? ours || theirs : ours && theirs) ? 'Yes' : 'No';
    }
    case 'number': {
      const n = parseNumber(offered);
      if (n === undefined || n < rule.lo || n > rule.hi) return 'Reject';
      const ours = rule.ours(limits);
      return String(rule.fn === 'min' ? Math.min(n, ours) : Math.max(n, ours));
    }
    case 'list': {
      const ours = rule.ours(limits);
      const choice = offered.split(',').find((v) => ours.includes(v));
      return choice ?? 'Reject';
    }
    default: {
      const never: never = rule;
      return never;
    }
  }
}

/**
 * RFC 7143 §6.1: numerical values are decimal, or hex with 0x, and at most 64 bits; we only
 * need values that fit in 32.
 */
export function parseNumber(v: string): number | undefined {
  if (/^[0-9]{1,10}$/.test(v)) return Number(v);
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(v)) return Number.parseInt(v.slice(2), 16);
  return undefined;
}
