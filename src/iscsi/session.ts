import type { ITNexus } from '../scsi/nexus';
import type { SessionType } from './login/login-machine';
import type { SessionParams } from './login/params';
import { sn } from './serial';
import type { IscsiTargetEntry } from './target-entry';
import type { IscsiTask } from './task';

/** The connection side a session talks to (one per session: MaxConnections=1). */
export interface SessionConnection {
  readonly cid: number;
  close(reason: string): void;
}

/**
 * An iSCSI session (RFC 7143 §4.2): identity (ISID, TSIH, initiator, target), negotiated
 * parameters, the CmdSN window (§4.2.2.1) and its tasks, keyed by ITT.
 */
export class Session {
  /** Next CmdSN we expect. */
  expCmdSN: number;
  private maxCmdSNValue: number;
  readonly tasks = new Map<number, IscsiTask>();
  /** Commands that arrived ahead of ExpCmdSN, delivered once the gap fills. */
  readonly early = new Map<number, () => void>();
  /** CmdSNs an ABORT TASK declared received before they arrived (RFC 7143 §11.5.1). */
  readonly abortedCmdSNs = new Set<number>();
  connection: SessionConnection | undefined;
  closed = false;
  /** A Logout Request arrived: new commands are rejected (RFC 7143 §11.17.1, reason 0x0c). */
  loggingOut = false;

  constructor(
    readonly tsih: number,
    readonly isid: Buffer,
    readonly initiatorName: string,
    readonly type: SessionType,
    readonly target: IscsiTargetEntry | undefined,
    readonly params: SessionParams,
    readonly nexus: ITNexus | undefined,
    readonly queueDepth: number,
    initialCmdSN: number,
  ) {
    this.expCmdSN = initialCmdSN;
    this.maxCmdSNValue = sn.add(initialCmdSN, queueDepth - 1);
  }

  /**
   * MaxCmdSN: the window stays `queueDepth` commands wide minus the tasks still running, and
   * never moves backwards (the Linux initiator ignores a MaxCmdSN that shrinks).
   */
  get maxCmdSN(): number {
    const free = Math.max(0, this.queueDepth - this.tasks.size);
    const candidate = sn.add(this.expCmdSN, free - 1);
    if (sn.lt(this.maxCmdSNValue, candidate)) this.maxCmdSNValue = candidate;
    return this.maxCmdSNValue;
  }

  /**
   * RFC 7143 §4.2.2.1: where a non-immediate CmdSN falls. Outside [ExpCmdSN, MaxCmdSN] the PDU
   * is silently ignored; ahead of ExpCmdSN it waits for the gap to fill.
   */
  classify(cmdSN: number): 'in-order' | 'early' | 'outside' {
    // A closed window (MaxCmdSN = ExpCmdSN - 1) refuses even the next CmdSN: this is what
    // bounds the commands one initiator can have running.
    if (!sn.lte(cmdSN, this.maxCmdSN)) return 'outside';
    if (cmdSN === this.expCmdSN) return 'in-order';
    if (sn.lt(this.expCmdSN, cmdSN)) return 'early';
    return 'outside';
  }

  /**
   * Immediate commands bypass the CmdSN window (RFC 7143 §3.2.2.1); past this many running
   * tasks they are refused with Reject reason 0x06 (§11.17.1) so they cannot be used to run
   * an unbounded number of commands.
   */
  get immediateRoom(): boolean {
    return this.tasks.size < this.queueDepth * 2;
  }

  /**
   * RFC 7143 §3.2.2.1 ordered delivery: runs a non-immediate command whose CmdSN is next,
   * queues one that arrived early, and ignores one outside the window. ExpCmdSN moves past a
   * command before it runs, so its response already acknowledges it; commands that were
   * waiting follow in CmdSN order.
   */
  accept(cmdSN: number, run: () => void): 'ran' | 'queued' | 'ignored' {
    switch (this.classify(cmdSN)) {
      case 'outside':
        return 'ignored';
      case 'early':
        this.early.set(cmdSN, run);
        return 'queued';
      case 'in-order':
        this.expCmdSN = sn.add(this.expCmdSN, 1);
        run();
        this.drain();
        return 'ran';
      default:
        return 'ignored';
    }
  }

  private drain(): void {
    for (;;) {
      if (this.abortedCmdSNs.delete(this.expCmdSN)) {
        this.expCmdSN = sn.add(this.expCmdSN, 1);
        continue;
      }
      const next = this.early.get(this.expCmdSN);
      if (!next) return;
      this.early.delete(this.expCmdSN);
      this.expCmdSN = sn.add(this.expCmdSN, 1);
      next();
    }
  }
}

/** Sessions of the whole portal, by TSIH and by (initiator, ISID, target) for reinstatement. */
export class SessionTable {
  private readonly byTsih = new Map<number, Session>();
  private nextTsih = 1;

  get size(): number {
    return this.byTsih.size;
  }

  all(): Session[] {
    return [...this.byTsih.values()];
  }

  get(tsih: number): Session | undefined {
    return this.byTsih.get(tsih);
  }

  /** RFC 7143 §6.3.5: the session with the same initiator port and target, if any. */
  findSame(initiatorName: string, isid: Buffer, targetIqn: string | undefined): Session | undefined {
    for (const s of this.byTsih.values()) {
      if (!s.closed && s.initiatorName === initiatorName && s.isid.equals(isid) && s.target?.iqn === targetIqn) return s;
    }
    return undefined;
  }

  /** A fresh non-zero TSIH (RFC 7143 §11.12.6). */
  allocateTsih(): number {
    for (let i = 0; i < 0xffff; i++) {
      const t = this.nextTsih;
      this.nextTsih = this.nextTsih === 0xffff ? 1 : this.nextTsih + 1;
      if (!this.byTsih.has(t)) return t;
    }
    throw new Error('no free TSIH');
  }

  add(s: Session): void {
    this.byTsih.set(s.tsih, s);
  }

  remove(s: Session): void {
    if (this.byTsih.get(s.tsih) === s) this.byTsih.delete(s.tsih);
  }
}
