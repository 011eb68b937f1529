import { LoginFailure, LoginStatus } from './status';
import type { TextPairs } from './text-codec';

/**
 * The security negotiation stage (RFC 7143 §6.3.1, §12). One exchange per login: it reads the
 * security keys of each Login Request and says what to answer and whether the initiator has
 * authenticated. Authentication methods other than None plug in through `AuthPolicy`.
 */
export interface SecurityStep {
  readonly reply: Array<[string, string]>;
  /** True once the initiator may leave the security stage. */
  readonly authenticated: boolean;
}

export interface SecurityExchange {
  step(pairs: TextPairs): SecurityStep;
  /** Called when the initiator leaves the security stage (or skips it). */
  finish(): void;
}

export interface AuthPolicy {
  /** Methods we accept in order of preference: "CHAP" and/or "None". */
  readonly methods: readonly string[];
  /** Creates the exchange for a method chosen from `methods`. */
  create(method: string): SecurityExchange;
}

/** AuthMethod=None: nothing to prove. */
export const NONE_AUTH: AuthPolicy = {
  methods: ['None'],
  create: () => ({ step: () => ({ reply: [], authenticated: true }), finish: () => undefined }),
};

/** Chooses the method from the initiator's AuthMethod list, then delegates to it. */
export class SecurityStage {
  private exchange: SecurityExchange | undefined;
  private authenticated = false;

  constructor(private readonly policy: AuthPolicy) {}

  /** An exchange has started and has not proven the initiator yet: keep the stage going. */
  get inProgress(): boolean {
    return this.exchange !== undefined && !this.authenticated;
  }

  /** True when the policy lets an initiator in without any security exchange. */
  get optional(): boolean {
    return this.policy.methods.includes('None');
  }

  step(pairs: TextPairs): SecurityStep {
    const reply: Array<[string, string]> = [];
    const offered = pairs.find(([k]) => k === 'AuthMethod');
    if (offered) {
      if (this.exchange) throw new LoginFailure(LoginStatus.InitiatorError, 'AuthMethod offered twice');
      // RFC 7143 §12: pick the first method in the initiator's list that we accept.
      const method = offered[1].split(',').find((m) => this.policy.methods.includes(m));
      if (!method) {
        reply.push(['AuthMethod', 'Reject']);
        return { reply, authenticated: false };
      }
      reply.push(['AuthMethod', method]);
      this.exchange = this.policy.create(method);
    }
    const rest = pairs.filter(([k]) => k !== 'AuthMethod');
    if (this.exchange) {
      const s = this.exchange.step(rest);
      reply.push(...s.reply);
      this.authenticated = s.authenticated;
    } else if (rest.some(([k]) => k.startsWith('CHAP_'))) {
      throw new LoginFailure(LoginStatus.InitiatorError, 'CHAP keys before AuthMethod was negotiated');
    }
    return { reply, authenticated: this.authenticated };
  }

  /** The initiator asks to leave the security stage: allowed only once authenticated. */
  leave(): void {
    if (!this.authenticated && !(this.exchange === undefined && this.optional)) {
      throw new LoginFailure(LoginStatus.AuthenticationFailure, 'authentication did not complete');
    }
    this.exchange?.finish();
    this.authenticated = true;
  }
}
