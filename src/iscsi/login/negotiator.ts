import { answer, INITIATOR_DECLARATIONS, OBSOLETE_KEYS, parseNumber, SESSION_KEYS, TARGET_ONLY_KEYS } from './keys';
import { type ConnectionParams, DEFAULT_MAX_RECV_DSL, DEFAULT_SESSION_PARAMS, type SessionParams, type TargetLimits } from './params';
import { LoginFailure, LoginStatus } from './status';
import type { TextPairs } from './text-codec';

/** Keys the security layer owns; the negotiator leaves them alone. */
const SECURITY_KEY = /^(AuthMethod|CHAP_[A-Z])$/;

/**
 * The operational side of login (RFC 7143 §6.2, §13): answers every key the initiator offers
 * and records the outcome. Declarations are noted, unknown keys get NotUnderstood, bad values
 * get Reject, and a key offered twice in one login fails it (§6.2).
 */
export class Negotiator {
  readonly session: SessionParams = { ...DEFAULT_SESSION_PARAMS };
  readonly connection: ConnectionParams;
  readonly declared = new Map<string, string>();
  private readonly seen = new Set<string>();
  /** A discovery session: digests are offered but never required (see finish). */
  discovery = false;

  constructor(private readonly limits: TargetLimits) {
    this.connection = {
      headerDigest: false,
      dataDigest: false,
      maxRecvDataSegmentLength: limits.maxRecvDataSegmentLength,
      maxXmitDataSegmentLength: DEFAULT_MAX_RECV_DSL,
    };
  }

  /** Answers one batch of pairs; security keys are skipped (the caller handles them). */
  respond(pairs: TextPairs, leading: boolean): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const [key, value] of pairs) {
      if (SECURITY_KEY.test(key)) continue;
      if (this.seen.has(key)) {
        throw new LoginFailure(LoginStatus.InitiatorError, `key ${key} offered more than once`);
      }
      this.seen.add(key);
      const reply = this.one(key, value, leading);
      if (reply !== undefined) out.push([key, reply]);
    }
    return out;
  }

  /**
   * Applies the cross-key rule of §13.14 once negotiation is over, and refuses a normal
   * session that did not settle on a digest the target requires (§13.1: None is the default
   * when the initiator never offered the key). Discovery sessions are exempt: they carry only
   * SendTargets text, and open-iscsi has no digest setting for them.
   */
  finish(): void {
    if (!this.discovery && !this.limits.headerDigests.includes('None') && !this.connection.headerDigest) {
      throw new LoginFailure(LoginStatus.InitiatorError, 'this target requires HeaderDigest=CRC32C');
    }
    if (!this.discovery && !this.limits.dataDigests.includes('None') && !this.connection.dataDigest) {
      throw new LoginFailure(LoginStatus.InitiatorError, 'this target requires DataDigest=CRC32C');
    }
    if (this.session.firstBurstLength > this.session.maxBurstLength) {
      this.session.firstBurstLength = this.session.maxBurstLength;
    }
  }

  private one(key: string, value: string, leading: boolean): string | undefined {
    if (INITIATOR_DECLARATIONS.has(key)) {
      if (key === 'MaxRecvDataSegmentLength') {
        const n = parseNumber(value);
        // §13.12: 512..2^24-1.
        if (n === undefined || n < 512 || n > 16777215) return 'Reject';
        this.connection.maxXmitDataSegmentLength = n;
      }
      this.declared.set(key, value);
      return undefined;
    }
    if (key === 'HeaderDigest' || key === 'DataDigest') {
      const configured = key === 'HeaderDigest' ? this.limits.headerDigests : this.limits.dataDigests;
      const ours = this.discovery && !configured.includes('None') ? [...configured, 'None'] : configured;
      const v = answer({ type: 'list', ours: () => ours }, value, this.limits);
      if (v === 'CRC32C') {
        if (key === 'HeaderDigest') this.connection.headerDigest = true;
        else this.connection.dataDigest = true;
      }
      return v;
    }
    if (key in OBSOLETE_KEYS) return OBSOLETE_KEYS[key];
    if (TARGET_ONLY_KEYS.has(key)) return 'Reject';
    const def = SESSION_KEYS[key];
    if (def) {
      // §6.3: leading-only keys on a non-leading connection are answered Irrelevant.
      if (!leading) return 'Irrelevant';
      const v = answer(def.rule, value, this.limits);
      if (v !== 'Reject') def.apply(this.session, v);
      return v;
    }
    // §6.2: anything else, including X- and X# extension keys, is not understood.
    return 'NotUnderstood';
  }
}
