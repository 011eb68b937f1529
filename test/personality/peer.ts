import { parseText, serializeText } from '../../src/iscsi/login/text-codec';
import { encodeDataOut, encodeLoginRequest, encodeNopOut, encodeScsiCommand, encodeTaskMgmtRequest, type TargetPdu } from '../../src/iscsi/pdu';
import type { Residual } from '../../src/iscsi/pdu/scsi-response';
import { TestInitiator } from '../lib/initiator';
import type { Profile } from './profiles';

/** The outcome of one SCSI command as the initiator sees it. */
export interface Outcome {
  readonly status: number;
  readonly sense: Buffer;
  readonly data: Buffer;
  readonly residual: Residual;
  /** iSCSI Response field of the SCSI Response (0: command completed at target). */
  readonly response: number;
}

/** Each login response of a login, with what RFC 7143 §11.13 lets an initiator check. */
export interface LoginStep {
  readonly status: number;
  readonly csg: number;
  readonly nsg: number;
  readonly transit: boolean;
  readonly tsih: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly text: Record<string, string>;
}

export interface ExecOptions {
  /** Expected Data-In length (a read). */
  readonly read?: number;
  /** Data of a write. */
  readonly write?: Buffer;
  readonly lun?: bigint;
  /** EDTL when it is not the read or write length (e.g. TEST UNIT READY with R and a length). */
  readonly expectedLength?: number;
  /** Set the R bit without a read length (ESXi's TEST UNIT READY). */
  readonly readBit?: boolean;
  /** Bytes sent as immediate data (default: as much as ImmediateData and FirstBurstLength allow). */
  readonly immediate?: number;
  /** Sizes of the unsolicited Data-Out PDUs (default: MaxRecvDataSegmentLength of the target). */
  readonly dataOutSize?: number;
  /** LUN field written into Data-Out PDUs (default: the command's LUN). */
  readonly dataOutLun?: bigint;
  /** Do not answer R2Ts (an initiator whose Data-Out never comes). */
  readonly withhold?: boolean;
  /** Task attribute (RFC 7143 §11.3.1: 1 simple). */
  readonly attr?: number;
}

interface Task {
  readonly itt: number;
  readonly opts: ExecOptions;
  readonly lun: bigint;
  readonly parts: Buffer[];
  r2ts: number;
  resolve(o: Outcome): void;
}

const FFFF = 0xffffffff;

/**
 * An initiator with a personality: it logs in the way a given initiator does (its ISID, name,
 * security stage, operational proposal), keeps many commands in flight, answers target NOP-Ins,
 * sends unsolicited and solicited Data-Out by the negotiated limits, and records every PDU it was
 * sent that no command claimed (asynchronous messages, Rejects).
 */
export class Peer {
  private readonly tasks = new Map<number, Task>();
  private readonly tmfs = new Map<number, (response: number) => void>();
  private readonly pings = new Map<number, () => void>();
  readonly rejects: TargetPdu[] = [];
  readonly asyncMessages: TargetPdu[] = [];
  readonly loginSteps: LoginStep[] = [];
  /** What the target answered in the operational stage. */
  answers: Record<string, string> = {};
  /** Largest Data-In segment the target sent (≤ our MaxRecvDataSegmentLength). */
  largestDataIn = 0;
  closed = false;

  private constructor(
    readonly c: TestInitiator,
    readonly profile: Profile,
  ) {}

  static async connect(port: number, profile: Profile): Promise<Peer> {
    return new Peer(await TestInitiator.connect(port), profile);
  }

  /** One Login Request (T=1 moves from `csg` to `nsg`; T=0 stays, e.g. a CHAP step). */
  private loginPdu(csg: 0 | 1, nsg: 0 | 1 | 3, pairs: Array<[string, string]>, isid: Buffer, transit = true): void {
    this.c.send(
      encodeLoginRequest({
        transit,
        cont: false,
        csg,
        nsg,
        versionMax: 0,
        versionMin: 0,
        isid,
        tsih: 0,
        itt: this.c.itt,
        cid: 0,
        cmdSN: this.c.cmdSN,
        expStatSN: this.c.expStatSN,
        data: serializeText(pairs),
      }),
    );
  }

  private async loginAnswer(): Promise<LoginStep> {
    const r = await this.c.recv(10_000);
    if (typeof r === 'string' || r.kind !== 'login-response') throw new Error(`login: got ${typeof r === 'string' ? r : r.kind}`);
    const step: LoginStep = {
      status: (r.statusClass << 8) | r.statusDetail,
      csg: r.csg,
      nsg: r.nsg,
      transit: r.transit,
      tsih: r.tsih,
      expCmdSN: r.expCmdSN,
      maxCmdSN: r.maxCmdSN,
      text: Object.fromEntries(parseText(r.data)),
    };
    this.loginSteps.push(step);
    return step;
  }

  /**
   * Logs in as the profile does: a security stage carrying only the names, the session type
   * and AuthMethod (or the CHAP exchange `auth` runs), then the operational proposal.
   * Returns the status of the step that failed, or 0.
   */
  async login(target: string, o: { isid?: Buffer; auth?: (p: Peer) => Promise<number>; extraKeys?: Array<[string, string]> } = {}): Promise<number> {
    const isid = o.isid ?? this.profile.isid;
    this.loginIsid = isid;
    if (o.auth) {
      const status = await o.auth(this);
      if (status !== 0) return status;
    } else {
      this.loginPdu(
        0,
        1,
        [
          ['InitiatorName', this.profile.initiatorName],
          ['SessionType', 'Normal'],
          ['TargetName', target],
          ['AuthMethod', 'None'],
        ],
        isid,
      );
      const s = await this.loginAnswer();
      if (s.status !== 0) return s.status;
    }
    const keys = new Map(this.profile.operational);
    for (const [k, v] of o.extraKeys ?? []) keys.set(k, v);
    this.loginPdu(1, 3, [...keys], isid);
    const s = await this.loginAnswer();
    if (s.status !== 0) return s.status;
    this.answers = s.text;
    this.pump();
    return 0;
  }

  /** The ISID of the last login (for CHAP steps run by a test). */
  loginIsid: Buffer = Buffer.alloc(6);

  /** One security-stage exchange with T=0 (a CHAP step), or T=1 to move on. */
  async securityStep(pairs: Array<[string, string]>, transit: boolean): Promise<LoginStep> {
    this.loginPdu(0, transit ? 1 : 0, pairs, this.loginIsid, transit);
    return this.loginAnswer();
  }

  /** Reads PDUs for the rest of the connection and hands each to whoever waits for it. */
  private pump(): void {
    void (async () => {
      for (;;) {
        const p = await this.c.recv(60_000);
        if (p === 'closed') break;
        if (p !== 'timeout') this.route(p);
      }
      this.closed = true;
      // A task management request the connection took with it is answered -1.
      for (const answer of this.tmfs.values()) answer(-1);
    })();
  }

  private route(p: TargetPdu): void {
    switch (p.kind) {
      case 'data-in': {
        const t = this.tasks.get(p.itt);
        this.largestDataIn = Math.max(this.largestDataIn, p.data.length);
        if (!t) return;
        t.parts.push(p.data);
        if (p.status) this.finish(t, { status: p.status.status, sense: Buffer.alloc(0), residual: p.status.residual, response: 0 });
        return;
      }
      case 'scsi-response': {
        const t = this.tasks.get(p.itt);
        if (t) this.finish(t, { status: p.status, sense: p.sense, residual: p.residual, response: p.response });
        return;
      }
      case 'r2t': {
        const t = this.tasks.get(p.itt);
        if (!t) return;
        t.r2ts++;
        if (!t.opts.withhold && t.opts.write) this.sendData(t, p.ttt, p.bufferOffset, p.desiredLength);
        return;
      }
      case 'nop-in':
        // RFC 7143 §11.19: a NOP-In with a TTT asks for a NOP-Out echoing it.
        if (p.ttt !== FFFF) {
          this.c.send(
            encodeNopOut({
              immediate: true,
              lun: p.lun,
              itt: FFFF,
              ttt: p.ttt,
              cmdSN: this.c.cmdSN,
              expStatSN: this.c.expStatSN,
              data: Buffer.alloc(0),
            }),
          );
        } else this.pings.get(p.itt)?.();
        return;
      case 'task-mgmt-response':
        this.tmfs.get(p.itt)?.(p.response);
        return;
      case 'reject':
        this.rejects.push(p);
        return;
      case 'async-message':
        this.asyncMessages.push(p);
        return;
      default:
        return;
    }
  }

  private finish(t: Task, o: Omit<Outcome, 'data'>): void {
    this.tasks.delete(t.itt);
    t.resolve({ ...o, data: Buffer.concat(t.parts) });
  }

  /** The target's MaxRecvDataSegmentLength: the most one Data-Out may carry. */
  get targetMaxRecv(): number {
    return Number(this.answers.MaxRecvDataSegmentLength ?? 8192);
  }

  private sendData(t: Task, ttt: number, offset: number, length: number, chunk = t.opts.dataOutSize ?? this.targetMaxRecv): void {
    const data = t.opts.write as Buffer;
    for (let off = offset, sn = 0; off < offset + length; sn++) {
      const len = Math.min(chunk, offset + length - off);
      this.c.send(
        encodeDataOut({
          final: off + len === offset + length,
          lun: t.opts.dataOutLun ?? t.lun,
          itt: t.itt,
          ttt,
          expStatSN: this.c.expStatSN,
          dataSN: sn,
          bufferOffset: off,
          data: data.subarray(off, off + len),
        }),
      );
      off += len;
    }
  }

  /** Sends a command (and its unsolicited data) and returns its ITT and the outcome's promise. */
  start(cdb: Buffer, opts: ExecOptions = {}): { itt: number; cmdSN: number; done: Promise<Outcome> } {
    const itt = this.c.itt++;
    const lun = opts.lun ?? 0n;
    const full = Buffer.alloc(16);
    cdb.copy(full);
    const w = opts.write;
    const firstBurst = Number(this.answers.FirstBurstLength ?? 65536);
    const immediateOk = this.answers.ImmediateData !== 'No';
    const immediate = w ? Math.min(opts.immediate ?? (immediateOk ? Math.min(firstBurst, this.targetMaxRecv) : 0), w.length) : 0;
    let resolve!: (o: Outcome) => void;
    const done = new Promise<Outcome>((r) => {
      resolve = r;
    });
    const task: Task = { itt, opts, lun, parts: [], r2ts: 0, resolve };
    this.tasks.set(itt, task);
    const cmdSN = this.c.cmdSN;
    this.c.send(
      encodeScsiCommand({
        immediate: false,
        final: !w || this.answers.InitialR2T !== 'No' || immediate >= Math.min(firstBurst, w.length),
        read: opts.read !== undefined || opts.readBit === true,
        write: w !== undefined,
        attr: opts.attr ?? 1,
        lun,
        itt,
        expectedDataLength: opts.expectedLength ?? opts.read ?? w?.length ?? 0,
        cmdSN,
        expStatSN: this.c.expStatSN,
        cdb: full,
        data: w ? w.subarray(0, immediate) : Buffer.alloc(0),
      }),
    );
    this.c.cmdSN = (this.c.cmdSN + 1) >>> 0;
    // RFC 7143 §13.10: with InitialR2T=No the initiator may send up to FirstBurstLength unsolicited.
    if (w && this.answers.InitialR2T === 'No' && immediate < Math.min(firstBurst, w.length) && !opts.withhold) {
      this.sendData(task, FFFF, immediate, Math.min(firstBurst, w.length) - immediate);
    }
    return { itt, cmdSN, done };
  }

  /** Runs a command to its outcome, failing after `timeoutMs`. */
  async exec(cdb: Buffer, opts: ExecOptions = {}, timeoutMs = 10_000): Promise<Outcome> {
    return within(this.start(cdb, opts).done, timeoutMs, `command 0x${cdb[0].toString(16)}`);
  }

  /** Runs a command and retries it while it ends in UNIT ATTENTION (what every initiator does). */
  async execRetryUa(cdb: Buffer, opts: ExecOptions = {}, timeoutMs = 10_000): Promise<Outcome> {
    for (let i = 0; ; i++) {
      const o = await this.exec(cdb, opts, timeoutMs);
      if (o.status !== 2 || (o.sense[2] & 0x0f) !== 6 || i >= 8) return o;
    }
  }

  /** A task management function (RFC 7143 §11.5); returns the response code (-1: the connection closed first). */
  async tmf(func: number, o: { referencedTaskTag?: number; refCmdSN?: number; lun?: bigint } = {}, timeoutMs = 10_000): Promise<number> {
    const itt = this.c.itt++;
    const answered = new Promise<number>((r) => this.tmfs.set(itt, r));
    this.c.send(
      encodeTaskMgmtRequest({
        immediate: true,
        func,
        lun: o.lun ?? 0n,
        itt,
        referencedTaskTag: o.referencedTaskTag ?? FFFF,
        cmdSN: this.c.cmdSN,
        expStatSN: this.c.expStatSN,
        refCmdSN: o.refCmdSN ?? 0,
        expDataSN: 0,
      }),
    );
    try {
      return await within(answered, timeoutMs, `task management function ${func}`);
    } finally {
      this.tmfs.delete(itt);
    }
  }

  /** A NOP-Out ping (RFC 7143 §11.18); resolves with the round-trip time in ms. */
  async ping(timeoutMs = 10_000): Promise<number> {
    const itt = this.c.itt++;
    const t0 = performance.now();
    const answered = new Promise<void>((r) => this.pings.set(itt, r));
    this.c.send(encodeNopOut({ immediate: true, lun: 0n, itt, ttt: FFFF, cmdSN: this.c.cmdSN, expStatSN: this.c.expStatSN, data: Buffer.alloc(0) }));
    try {
      await within(answered, timeoutMs, 'NOP-In');
      return performance.now() - t0;
    } finally {
      this.pings.delete(itt);
    }
  }

  /** R2Ts the target sent for a task still running (0 once it ended). */
  r2tsOf(itt: number): number {
    return this.tasks.get(itt)?.r2ts ?? 0;
  }

  /** Tasks still waiting for their status. */
  get outstanding(): number {
    return this.tasks.size;
  }

  close(): void {
    this.c.close();
  }
}

export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** [status, sense key, ASC, ASCQ] of an outcome (fixed-format sense, SPC-5 §4.4.3). */
export const senseOf = (o: Outcome): [number, number, number, number] =>
  o.sense.length >= 14 ? [o.status, o.sense[2] & 0x0f, o.sense[12], o.sense[13]] : [o.status, 0, 0, 0];
