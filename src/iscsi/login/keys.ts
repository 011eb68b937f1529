import { unreachable } from '../../util/unreachable';
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

function bool(fn: 'or' | 'and', ours: (l: TargetLimits) => boolean, set: (p: SessionParams, v: boolean) => void): SessionKey {
  return {
    rule: { type: 'bool', fn, ours },
    apply: (p, v) => {
      set(p, v === 'Yes');
    },
  };
}

function num(fn: 'min' | 'max', lo: number, hi: number, ours: (l: TargetLimits) => number, set?: (p: SessionParams, v: number) => void): SessionKey {
  return {
    rule: { type: 'number', fn, lo, hi, ours },
    apply: (p, v) => {
      set?.(p, Number(v));
    },
  };
}

/** Leading-only, session-wide keys (RFC 7143 §13.8-§13.20, §13.23-§13.24). */
export const SESSION_KEYS: Readonly<Record<string, SessionKey>> = {
  // §13.10: OR: a Yes from either side requires R2T for the first burst.
  InitialR2T: bool(
    'or',
    (l) => l.initialR2T,
    (p, v) => {
      p.initialR2T = v;
    },
  ),
  // §13.11: AND.
  ImmediateData: bool(
    'and',
    (l) => l.immediateData,
    (p, v) => {
      p.immediateData = v;
    },
  ),
  // §13.13: min, 512..2^24-1.
  MaxBurstLength: num(
    'min',
    512,
    16777215,
    (l) => l.maxBurstLength,
    (p, v) => {
      p.maxBurstLength = v;
    },
  ),
  // §13.14: min, 512..2^24-1, and never above MaxBurstLength (enforced after login).
  FirstBurstLength: num(
    'min',
    512,
    16777215,
    (l) => l.firstBurstLength,
    (p, v) => {
      p.firstBurstLength = v;
    },
  ),
  // §13.15: max.
  DefaultTime2Wait: num(
    'max',
    0,
    3600,
    (l) => l.defaultTime2Wait,
    (p, v) => {
      p.defaultTime2Wait = v;
    },
  ),
  // §13.16: min.
  DefaultTime2Retain: num(
    'min',
    0,
    3600,
    (l) => l.defaultTime2Retain,
    (p, v) => {
      p.defaultTime2Retain = v;
    },
  ),
  // §13.17: min, 1..65535.
  MaxOutstandingR2T: num(
    'min',
    1,
    65535,
    (l) => l.maxOutstandingR2T,
    (p, v) => {
      p.maxOutstandingR2T = v;
    },
  ),
  // §13.18/§13.19: OR; we only implement in-order delivery, so we answer Yes.
  DataPDUInOrder: bool(
    'or',
    () => true,
    (p, v) => {
      p.dataPDUInOrder = v;
    },
  ),
  DataSequenceInOrder: bool(
    'or',
    () => true,
    (p, v) => {
      p.dataSequenceInOrder = v;
    },
  ),
  // §13.20: min; we implement level 0 only.
  ErrorRecoveryLevel: num(
    'min',
    0,
    2,
    () => 0,
    (p, v) => {
      p.errorRecoveryLevel = v;
    },
  ),
  // §13.2: min; one connection per session (no MC/S).
  MaxConnections: num(
    'min',
    1,
    65535,
    () => 1,
    (p, v) => {
      p.maxConnections = v;
    },
  ),
  // §13.23: we report tasks the RFC 3720 way only.
  TaskReporting: { rule: { type: 'list', ours: () => ['RFC3720'] }, apply: () => undefined },
  // §13.24: 1 = RFC 7143.
  iSCSIProtocolLevel: num('min', 0, 31, () => 1),
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
    default:
      return unreachable(rule);
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
