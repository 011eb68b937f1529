import type { LoginRequestPdu, Stage } from '../pdu/login';
import { Negotiator } from './negotiator';
import type { ConnectionParams, SessionParams, TargetLimits } from './params';
import { type AuthPolicy, SecurityStage } from './security';
import { LoginFailure, LoginStatus } from './status';
import { MAX_TEXT_BYTES, parseText } from './text-codec';

export type SessionType = 'Normal' | 'Discovery';

/** What the login needs to know about a target it may log in to. */
export interface LoginTarget {
  readonly iqn: string;
  readonly alias?: string;
  readonly portalGroupTag: number;
  /** Initiator ACL (name and source address); false means "not authorized" (0x0202). */
  authorize(initiatorName: string, address: string): boolean;
  readonly auth: AuthPolicy;
}

export interface LoginContext {
  readonly limits: TargetLimits;
  readonly peerAddress: string;
  findTarget(iqn: string): LoginTarget | undefined;
  /** Auth policy of discovery sessions. */
  readonly discoveryAuth: AuthPolicy;
  readonly discoveryPortalGroupTag: number;
  /**
   * Validates a login that names an existing session (TSIH != 0): throws LoginFailure when it
   * cannot join (RFC 7143 §6.3.1, status 0x020a / 0x0206).
   */
  checkExistingSession(tsih: number, isid: Buffer, initiatorName: string, cid: number): void;
}

/** Everything the connection needs once login has succeeded. */
export interface LoginResult {
  readonly sessionType: SessionType;
  readonly initiatorName: string;
  readonly initiatorAlias: string | undefined;
  readonly target: LoginTarget | undefined;
  readonly isid: Buffer;
  readonly tsih: number;
  readonly cid: number;
  readonly session: SessionParams;
  readonly connection: ConnectionParams;
}

export type LoginStep =
  | { readonly kind: 'reply'; readonly transit: boolean; readonly csg: Stage; readonly nsg: Stage; readonly text: Array<[string, string]> }
  | { readonly kind: 'complete'; readonly csg: Stage; readonly text: Array<[string, string]>; readonly result: LoginResult };

type Phase = 'start' | 'security' | 'operational';

/**
 * The login phase of one connection (RFC 7143 §6.3, §11.12): security stage, operational stage,
 * then full feature phase. `handle` takes each Login Request and returns what to answer; any
 * LoginFailure it throws ends the login with that status.
 */
export class LoginMachine {
  private phase: Phase = 'start';
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly negotiator: Negotiator;
  private security: SecurityStage | undefined;
  private first: LoginRequestPdu | undefined;
  private sessionType: SessionType = 'Normal';
  private initiatorName = '';
  private target: LoginTarget | undefined;
  private declaredOurs = false;
  private sentTpgt = false;

  constructor(private readonly ctx: LoginContext) {
    this.negotiator = new Negotiator(ctx.limits);
  }

  handle(req: LoginRequestPdu): LoginStep {
    // RFC 7143 §11.12.4: we speak version 0x00 only.
    if (req.versionMin > 0) throw new LoginFailure(LoginStatus.UnsupportedVersion, `version ${req.versionMin} not supported`);
    if (this.first) this.checkSameLogin(req);
    if (req.csg === 2 || req.csg === 3) throw new LoginFailure(LoginStatus.InitiatorError, `invalid CSG ${req.csg}`);
    if (req.transit && (req.nsg === 2 || req.nsg <= req.csg)) {
      throw new LoginFailure(LoginStatus.InitiatorError, `invalid stage transition ${req.csg} -> ${req.nsg}`);
    }
    // §11.12.2: a C-bit request carries part of the text; answer it empty and wait for the rest.
    this.pendingBytes += req.data.length;
    if (this.pendingBytes > MAX_TEXT_BYTES) throw new LoginFailure(LoginStatus.InitiatorError, 'login text too long');
    this.pending.push(req.data);
    if (req.cont) {
      if (req.transit) throw new LoginFailure(LoginStatus.InitiatorError, 'C and T bits both set');
      return { kind: 'reply', transit: false, csg: req.csg, nsg: 0, text: [] };
    }
    const text = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    let pairs: Array<[string, string]>;
    try {
      pairs = parseText(text);
    } catch (e) {
      throw new LoginFailure(LoginStatus.InitiatorError, (e as Error).message);
    }
    if (!this.first) {
      this.first = req;
      this.identify(req, pairs);
    }
    return req.csg === 0 ? this.securityStage(req, pairs) : this.operationalStage(req, pairs);
  }

  /** §6.3: the first Login Request names the initiator, the session type and the target. */
  private identify(req: LoginRequestPdu, pairs: Array<[string, string]>): void {
    const get = (k: string): string | undefined => pairs.find(([key]) => key === k)?.[1];
    const initiatorName = get('InitiatorName');
    if (!initiatorName) throw new LoginFailure(LoginStatus.MissingParameter, 'InitiatorName missing from the first Login Request');
    this.initiatorName = initiatorName;
    const type = get('SessionType') ?? 'Normal';
    if (type !== 'Normal' && type !== 'Discovery') throw new LoginFailure(LoginStatus.SessionTypeNotSupported, `SessionType ${type}`);
    this.sessionType = type;
    this.negotiator.discovery = type === 'Discovery';
    if (type === 'Normal') {
      const name = get('TargetName');
      if (!name) throw new LoginFailure(LoginStatus.MissingParameter, 'TargetName missing from a normal session login');
      const target = this.ctx.findTarget(name);
      if (!target) throw new LoginFailure(LoginStatus.TargetNotFound, `no target ${name}`);
      if (!target.authorize(initiatorName, this.ctx.peerAddress)) {
        throw new LoginFailure(LoginStatus.AuthorizationFailure, `${initiatorName} is not allowed to log in to ${name}`);
      }
      this.target = target;
    } else if (req.tsih !== 0) {
      throw new LoginFailure(LoginStatus.InitiatorError, 'a discovery session cannot be joined');
    }
    if (req.tsih !== 0) this.ctx.checkExistingSession(req.tsih, req.isid, initiatorName, req.cid);
    this.security = new SecurityStage(this.target?.auth ?? this.ctx.discoveryAuth);
  }

  private securityStage(req: LoginRequestPdu, pairs: Array<[string, string]>): LoginStep {
    if (this.phase === 'operational') throw new LoginFailure(LoginStatus.InitiatorError, 'cannot return to the security stage');
    this.phase = 'security';
    const security = this.requireSecurity();
    const s = security.step(pairs);
    const text = [...s.reply, ...this.negotiator.respond(pairs, req.tsih === 0), ...this.declarations(false)];
    // An exchange still in progress keeps the stage even if the initiator asked to move on.
    if (!req.transit || (!s.authenticated && security.inProgress)) {
      return { kind: 'reply', transit: false, csg: 0, nsg: 0, text };
    }
    security.leave();
    if (req.nsg === 3) return this.complete(req, 0, text);
    this.phase = 'operational';
    return { kind: 'reply', transit: true, csg: 0, nsg: req.nsg, text };
  }

  private operationalStage(req: LoginRequestPdu, pairs: Array<[string, string]>): LoginStep {
    if (this.phase !== 'operational') {
      // The initiator skipped the security stage: only allowed when no authentication is needed.
      this.requireSecurity().leave();
      this.phase = 'operational';
    }
    if (pairs.some(([k]) => k === 'AuthMethod' || k.startsWith('CHAP_'))) {
      throw new LoginFailure(LoginStatus.InitiatorError, 'security keys in the operational stage');
    }
    const text = [...this.negotiator.respond(pairs, req.tsih === 0), ...this.declarations(true)];
    if (req.transit && req.nsg === 3) return this.complete(req, 1, text);
    return { kind: 'reply', transit: false, csg: 1, nsg: 0, text };
  }

  /** Our own declarative keys: TargetPortalGroupTag first (§13.9), MaxRecvDataSegmentLength (§13.12). */
  private declarations(operational: boolean): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    if (!this.sentTpgt && this.sessionType === 'Normal' && this.target) {
      out.push(['TargetPortalGroupTag', String(this.target.portalGroupTag)]);
      if (this.target.alias) out.push(['TargetAlias', this.target.alias]);
      this.sentTpgt = true;
    }
    if (operational && !this.declaredOurs) {
      out.push(['MaxRecvDataSegmentLength', String(this.ctx.limits.maxRecvDataSegmentLength)]);
      this.declaredOurs = true;
    }
    return out;
  }

  private complete(req: LoginRequestPdu, csg: Stage, text: Array<[string, string]>): LoginStep {
    this.negotiator.finish();
    const first = this.first as LoginRequestPdu;
    return {
      kind: 'complete',
      csg,
      text,
      result: {
        sessionType: this.sessionType,
        initiatorName: this.initiatorName,
        initiatorAlias: this.negotiator.declared.get('InitiatorAlias'),
        target: this.target,
        isid: first.isid,
        tsih: req.tsih,
        cid: req.cid,
        session: this.negotiator.session,
        connection: this.negotiator.connection,
      },
    };
  }

  private requireSecurity(): SecurityStage {
    if (!this.security) throw new LoginFailure(LoginStatus.InitiatorError, 'login out of order');
    return this.security;
  }

  /** §6.3: ISID, TSIH and CID stay the same through one login. */
  private checkSameLogin(req: LoginRequestPdu): void {
    const f = this.first as LoginRequestPdu;
    if (!f.isid.equals(req.isid) || f.tsih !== req.tsih || f.cid !== req.cid) {
      throw new LoginFailure(LoginStatus.InitiatorError, 'ISID, TSIH or CID changed during login');
    }
  }
}
