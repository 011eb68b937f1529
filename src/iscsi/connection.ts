import type { Socket } from 'node:net';
import { log } from '../util/log';
import { unreachable } from '../util/unreachable';
import { ByteBudget } from './budget';
import { digestOf, writeDigest } from './digest';
import { PduError, RejectReason } from './errors';
import { handleLogout } from './ffp/logout';
import { handleNopOut } from './ffp/nop';
import { handleDataOut, handleScsiCommand } from './ffp/scsi-command';
import { handleTaskMgmt } from './ffp/task-mgmt';
import { handleText } from './ffp/text';
import { Framer, type ReceivedFrame } from './framer';
import { LoginMachine, type LoginResult, type LoginStep } from './login/login-machine';
import { type ConnectionParams, DEFAULT_MAX_RECV_DSL } from './login/params';
import { LoginFailure, LoginStatus } from './login/status';
import { serializeText } from './login/text-codec';
import { buildNexus } from './nexus';
import { decodeInitiatorPdu, type InitiatorPdu } from './pdu';
import { type OutFrame, pad4 } from './pdu/frame';
import { encodeLoginResponse, type LoginRequestPdu } from './pdu/login';
import { encodeNopIn } from './pdu/nop';
import { RESERVED_TAG } from './pdu/opcodes';
import { encodeReject } from './pdu/reject';
import type { PortalContext } from './portal-context';
import { Session, type SessionConnection } from './session';

type ConnState = 'login' | 'full-feature' | 'logged-out' | 'closed';

const PAD = Buffer.alloc(4);

/** Bytes queued in the socket past which we stop reading from the initiator. */
const SEND_HIGH_WATER = 16 * 1024 * 1024;
/** PDUs up to this size are written as one buffer. */
const SMALL_PDU = 1024;

/**
 * One TCP connection (RFC 7143 §4.1): framing, the login phase, then dispatch of full feature
 * phase PDUs to their handlers in ffp/. The receive path is an explicit state machine; the
 * send path adds padding and digests and batches writes with cork/uncork.
 */
export class Connection implements SessionConnection {
  state: ConnState = 'login';
  session: Session | undefined;
  params: ConnectionParams;
  cid = 0;
  readonly peer: string;
  private readonly framer: Framer;
  private login: LoginMachine;
  private statSN = 1;
  private nextTtt = 1;
  private lastReceived = Date.now();
  ping: { ttt: number; sentAt: number } | undefined;
  /** A Text Response we are handing out in pieces (RFC 7143 §11.11, C bit). */
  textOut: { itt: number; ttt: number; rest: Buffer } | undefined;
  /** A Text Request the initiator is sending in pieces. */
  textIn: { itt: number; ttt: number; parts: Buffer[]; bytes: number } | undefined;
  /** Tasks whose R2Ts wait for the solicited-bytes budget. */
  readonly r2tWaiting = new Set<import('./task').IscsiTask>();
  private readonly timer: NodeJS.Timeout;
  private readonly loginDeadline: number;
  private txDigests = { header: false, data: false };
  /** Solicited Data-Out bytes outstanding on this connection (bounded, see portal options). */
  solicitedBytes = 0;
  /** Reading is paused until the socket drains (see throttle). */
  private readPaused = false;
  private corked = false;
  /** Data-In bytes of commands running on this connection (bounded, see portal options). */
  readonly readBudget: ByteBudget;

  constructor(
    private readonly socket: Socket,
    readonly ctx: PortalContext,
  ) {
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.framer = new Framer(ctx.limits.maxRecvDataSegmentLength);
    this.params = {
      headerDigest: false,
      dataDigest: false,
      maxRecvDataSegmentLength: ctx.limits.maxRecvDataSegmentLength,
      maxXmitDataSegmentLength: DEFAULT_MAX_RECV_DSL,
    };
    this.login = this.newLogin();
    this.readBudget = new ByteBudget(ctx.options.maxReadBytes);
    this.loginDeadline = Date.now() + ctx.options.loginTimeoutMs;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.close(`socket error: ${e.message}`));
    socket.on('close', () => this.close('peer closed the connection'));
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
    ctx.stats.connectionsOpened++;
  }

  get remoteAddress(): string {
    return (this.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  }

  private newLogin(): LoginMachine {
    return new LoginMachine({
      limits: this.ctx.limits,
      peerAddress: this.remoteAddress,
      findTarget: (iqn) => this.ctx.directory.find(iqn),
      discoveryAuth: this.ctx.discoveryAuth,
      discoveryPortalGroupTag: 1,
      checkExistingSession: (tsih, isid, initiatorName, cid) => {
        const s = this.ctx.sessions.get(tsih);
        if (!s || s.closed || !s.isid.equals(isid) || s.initiatorName !== initiatorName) {
          throw new LoginFailure(LoginStatus.SessionDoesNotExist, `no session with TSIH ${tsih}`);
        }
        // MaxConnections=1: only a reinstatement of the same CID may join (RFC 7143 §6.3.4).
        if (s.connection && s.connection.cid !== cid) {
          throw new LoginFailure(LoginStatus.TooManyConnections, 'the session already has its one connection');
        }
      },
    });
  }

  // ------------------------------------------------------------------ receive

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.lastReceived = Date.now();
    this.ping = undefined;
    this.framer.push(chunk);
    for (;;) {
      // handleFrame may have closed the connection.
      if ((this.state as ConnState) === 'closed') return;
      let frame: ReceivedFrame | null;
      try {
        frame = this.framer.next();
      } catch (e) {
        this.protocolError(e);
        return;
      }
      if (!frame) return;
      try {
        this.handleFrame(frame);
      } catch (e) {
        this.protocolError(e, frame.bhs);
      }
    }
  }

  private handleFrame(frame: ReceivedFrame): void {
    const pdu = decodeInitiatorPdu(frame);
    switch (this.state) {
      case 'login':
        if (pdu.kind !== 'login-request') {
          // RFC 7143 §6.3: only Login Requests before the full feature phase.
          throw new PduError('ISCSI_ERR_SEQUENCE', `${pdu.kind} during login`, RejectReason.ProtocolError, true);
        }
        this.onLogin(pdu);
        return;
      case 'full-feature':
        this.dispatch(pdu, frame);
        return;
      case 'logged-out':
      case 'closed':
        return;
      default:
        unreachable(this.state);
    }
  }

  private dispatch(pdu: InitiatorPdu, frame: ReceivedFrame): void {
    const session = this.session as Session;
    const dataDigestError = frame.dataDigestError;
    if (dataDigestError) this.ctx.stats.digestErrors++;
    switch (pdu.kind) {
      case 'scsi-command':
        if (session.type === 'Discovery') throw new PduError('ISCSI_ERR_SEQUENCE', 'SCSI command in a discovery session');
        handleScsiCommand(this, session, pdu, frame);
        return;
      case 'data-out':
        handleDataOut(this, session, pdu, frame);
        return;
      case 'nop-out':
        handleNopOut(this, session, pdu, frame);
        return;
      case 'task-mgmt-request':
        if (session.type === 'Discovery') throw new PduError('ISCSI_ERR_SEQUENCE', 'task management in a discovery session');
        handleTaskMgmt(this, session, pdu);
        return;
      case 'text-request':
        handleText(this, session, pdu, frame);
        return;
      case 'logout-request':
        handleLogout(this, session, pdu);
        return;
      case 'login-request':
        throw new PduError('ISCSI_ERR_SEQUENCE', 'Login Request in the full feature phase');
      case 'snack-request':
        // RFC 7143 §11.16: SNACK needs ErrorRecoveryLevel > 0; we negotiate 0.
        throw new PduError('ISCSI_ERR_SEQUENCE', 'SNACK at ErrorRecoveryLevel 0');
      default:
        unreachable(pdu);
    }
  }

  /** A protocol violation: Reject PDU (RFC 7143 §11.17), and a close when the stream is lost. */
  private protocolError(e: unknown, header?: Buffer): void {
    if (!(e instanceof PduError)) {
      log.error('internal error on connection', { peer: this.peer, error: e instanceof Error ? e.stack : String(e) });
      this.close('internal error');
      return;
    }
    log.warn('protocol error', { peer: this.peer, code: e.code, error: e.message });
    const hdr = e.header ?? header;
    if (this.state === 'full-feature' && hdr) this.reject(e.reject, hdr);
    if (e.fatal || this.state !== 'full-feature') this.close(`protocol error: ${e.message}`);
  }

  reject(reason: number, header: Buffer): void {
    const s = this.session;
    this.ctx.stats.rejectsSent++;
    this.send(
      encodeReject({
        reason,
        statSN: this.nextStatSN(),
        expCmdSN: s?.expCmdSN ?? 0,
        maxCmdSN: s?.maxCmdSN ?? 0,
        dataSN: 0,
        rejectedHeader: header,
      }),
    );
  }

  // ------------------------------------------------------------------ login

  private onLogin(req: LoginRequestPdu): void {
    if (this.ctx.draining) {
      this.loginFailed(req, new LoginFailure(LoginStatus.ServiceUnavailable, 'target is shutting down'));
      return;
    }
    let step: LoginStep;
    try {
      step = this.login.handle(req);
    } catch (e) {
      if (e instanceof LoginFailure) {
        this.loginFailed(req, e);
        return;
      }
      throw e;
    }
    if (step.kind === 'reply') {
      this.sendLoginResponse(req, step.transit, step.csg, step.nsg, step.text, 0, LoginStatus.Success);
      return;
    }
    let session: Session;
    try {
      session = this.establish(step.result, req);
    } catch (e) {
      if (e instanceof LoginFailure) {
        this.loginFailed(req, e);
        return;
      }
      throw e;
    }
    this.sendLoginResponse(req, true, step.csg, 3, step.text, session.tsih, LoginStatus.Success);
    // RFC 7143 §13.1: digests apply from the first full feature phase PDU on.
    this.params = step.result.connection;
    this.framer.headerDigest = this.params.headerDigest;
    this.framer.dataDigest = this.params.dataDigest;
    this.txDigests = { header: this.params.headerDigest, data: this.params.dataDigest };
    this.state = 'full-feature';
    this.ctx.stats.loginsSucceeded++;
    log.info('login', {
      peer: this.peer,
      initiator: session.initiatorName,
      target: session.target?.iqn ?? '(discovery)',
      type: session.type,
      tsih: session.tsih,
      headerDigest: this.params.headerDigest,
      dataDigest: this.params.dataDigest,
    });
  }

  /** Creates the session (or reinstates one: RFC 7143 §6.3.5) and binds this connection to it. */
  private establish(r: LoginResult, req: LoginRequestPdu): Session {
    const sessions = this.ctx.sessions;
    this.cid = r.cid;
    if (r.tsih !== 0) {
      const s = sessions.get(r.tsih);
      if (!s || s.closed) throw new LoginFailure(LoginStatus.SessionDoesNotExist, `session ${r.tsih} is gone`);
      // Connection reinstatement at ERL 0: the old connection and its tasks end.
      s.connection?.close('connection reinstated');
      s.connection = this;
      this.session = s;
      return s;
    }
    if (r.sessionType === 'Normal') {
      const old = sessions.findSame(r.initiatorName, r.isid, r.target?.iqn);
      if (old) {
        log.info('session reinstatement', { initiator: r.initiatorName, oldTsih: old.tsih });
        endSession(old, this.ctx, 'session reinstated');
      }
    }
    const target = r.target ? this.ctx.directory.find(r.target.iqn) : undefined;
    const tsih = sessions.allocateTsih();
    const nexus = target ? buildNexus(r.initiatorName, r.isid, target.iqn, target.portalGroupTag) : undefined;
    const s = new Session(tsih, r.isid, r.initiatorName, r.sessionType, target, r.session, nexus, this.ctx.options.queueDepth, req.cmdSN);
    s.connection = this;
    sessions.add(s);
    this.session = s;
    return s;
  }

  private loginFailed(req: LoginRequestPdu, f: LoginFailure): void {
    this.ctx.stats.loginFailed(loginFailureLabel(f.status));
    log.warn('login failed', { peer: this.peer, status: `0x${f.status.toString(16).padStart(4, '0')}`, reason: f.message });
    this.sendLoginResponse(req, false, req.csg, 0, [], 0, f.status);
    this.close('login failed');
  }

  private sendLoginResponse(
    req: LoginRequestPdu,
    transit: boolean,
    csg: 0 | 1 | 2 | 3,
    nsg: 0 | 1 | 2 | 3,
    text: Array<[string, string]>,
    tsih: number,
    status: number,
  ): void {
    this.send(
      encodeLoginResponse({
        transit,
        cont: false,
        csg,
        nsg: transit ? nsg : 0,
        versionMax: 0,
        versionActive: 0,
        isid: req.isid,
        tsih,
        itt: req.itt,
        statSN: this.nextStatSN(),
        expCmdSN: req.cmdSN,
        maxCmdSN: (req.cmdSN + this.ctx.options.queueDepth - 1) >>> 0,
        statusClass: status >> 8,
        statusDetail: status & 0xff,
        data: serializeText(text),
      }),
    );
  }

  // ------------------------------------------------------------------ send

  nextStatSN(): number {
    const v = this.statSN;
    this.statSN = (this.statSN + 1) >>> 0;
    return v;
  }

  /** StatSN to show in PDUs that do not consume one (R2T, NOP-In pings, Data-In). */
  get currentStatSN(): number {
    return this.statSN;
  }

  allocTtt(): number {
    const t = this.nextTtt;
    this.nextTtt = this.nextTtt >= 0xfffffffe ? 1 : this.nextTtt + 1;
    return t;
  }

  /**
   * Writes one PDU: BHS, header digest, data, padding, data digest (RFC 7143 §11.2).
   * `onSent` runs once the socket is done with the PDU's buffers (written, or the socket gone).
   */
  send(out: OutFrame, onSent?: () => void): void {
    if (this.socket.destroyed || !this.socket.writable) {
      onSent?.();
      return;
    }
    const s = this.socket;
    this.throttle();
    this.corkUntilNextTurn();
    const parts: Buffer[] = [out.bhs];
    if (this.txDigests.header) parts.push(writeDigest(digestOf(out.bhs)));
    const data = out.data;
    let bytes = out.bhs.length;
    if (data && data.length > 0) {
      parts.push(data);
      const pad = pad4(data.length) - data.length;
      if (pad > 0) parts.push(PAD.subarray(0, pad));
      if (this.txDigests.data) parts.push(writeDigest(digestOf(data, PAD.subarray(0, pad))));
      bytes += data.length;
    }
    // Small PDUs go as one buffer (one stream write instead of up to five); large data
    // segments are not copied.
    if (bytes <= SMALL_PDU) s.write(parts.length === 1 ? parts[0] : Buffer.concat(parts), onSent);
    else for (let i = 0; i < parts.length; i++) s.write(parts[i], i === parts.length - 1 ? onSent : undefined);
  }

  /**
   * Responses completed in the same turn of the event loop leave in one writev: the socket is
   * corked on the first send and uncorked once the current I/O callbacks have run.
   */
  private corkUntilNextTurn(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }

  /**
   * Back-pressure: an initiator that does not read what we send must not make us queue
   * unbounded Data-In in the socket. Past the high-water mark we stop reading its PDUs (no new
   * commands) until the socket drains; commands already running finish within their budgets.
   */
  private throttle(): void {
    const s = this.socket;
    if (this.readPaused || s.writableLength < SEND_HIGH_WATER) return;
    this.readPaused = true;
    s.pause();
    s.once('drain', () => {
      this.readPaused = false;
      // Time spent waiting for the initiator to read is not idleness (NOP-In pings).
      this.lastReceived = Date.now();
      if (this.state !== 'closed') s.resume();
    });
  }

  /** Batches the writes of `fn` into as few TCP segments as possible. */
  batch(fn: () => void): void {
    this.socket.cork();
    try {
      fn();
    } finally {
      this.socket.uncork();
    }
  }

  // ------------------------------------------------------------------ liveness, close

  /** RFC 7143 §11.19: ping an idle initiator; drop it if it stops answering. */
  private tick(): void {
    const now = Date.now();
    if (this.state === 'login' && now > this.loginDeadline) {
      this.ctx.stats.loginFailed('timeout');
      this.close('login timed out');
      return;
    }
    if (this.state !== 'full-feature' || !this.session) return;
    if (this.ping) {
      if (now - this.ping.sentAt > this.ctx.options.nopTimeoutMs) {
        this.ctx.stats.pingTimeouts++;
        this.close('initiator did not answer NOP-In');
      }
      return;
    }
    if (now - this.lastReceived >= this.ctx.options.nopIntervalMs) {
      const ttt = this.allocTtt();
      this.ping = { ttt, sentAt: now };
      this.send(
        encodeNopIn({
          lun: 0n,
          itt: RESERVED_TAG,
          ttt,
          statSN: this.currentStatSN,
          expCmdSN: this.session.expCmdSN,
          maxCmdSN: this.session.maxCmdSN,
          data: Buffer.alloc(0),
        }),
      );
    }
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    const wasFfp = this.state === 'full-feature' || this.state === 'logged-out';
    this.state = 'closed';
    clearInterval(this.timer);
    // end() lets queued PDUs (a Logout or Login Response) reach the peer before the FIN.
    if (!this.socket.destroyed) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
    this.ctx.stats.connectionsClosed++;
    const s = this.session;
    if (s && s.connection === this) {
      s.connection = undefined;
      // ERL 0: losing the connection ends the session and every task in it.
      endSession(s, this.ctx, reason);
    }
    if (wasFfp) log.info('connection closed', { peer: this.peer, tsih: s?.tsih, reason });
    else log.debug('connection closed during login', { peer: this.peer, reason });
  }
}

/** Ends a session: its connection closes, its tasks are aborted, the I_T nexus is lost. */
export function endSession(s: Session, ctx: PortalContext, reason: string): void {
  if (s.closed) return;
  s.closed = true;
  ctx.sessions.remove(s);
  for (const t of s.tasks.values()) {
    t.aborted = true;
    t.scsi.cancel();
  }
  s.tasks.clear();
  s.early.clear();
  if (s.nexus && s.target) s.target.scsi.nexusLost(s.nexus);
  const c = s.connection;
  s.connection = undefined;
  c?.close(reason);
}

function loginFailureLabel(status: number): string {
  switch (status) {
    case LoginStatus.AuthenticationFailure:
      return 'authentication';
    case LoginStatus.AuthorizationFailure:
      return 'authorization';
    case LoginStatus.TargetNotFound:
      return 'target_not_found';
    case LoginStatus.ServiceUnavailable:
      return 'unavailable';
    default:
      return 'protocol';
  }
}
