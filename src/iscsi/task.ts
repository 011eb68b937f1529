import type { ScsiTask } from '../scsi/target';
import { PduError, RejectReason } from './errors';
import type { SessionParams } from './login/params';
import type { DataOutPdu } from './pdu/data-out';
import { RESERVED_TAG } from './pdu/opcodes';
import type { ScsiCommandPdu } from './pdu/scsi-command';
import { RX_POOL } from './rx-pool';

/** One R2T we sent and the Data-Out sequence answering it (RFC 7143 §11.8). */
interface OutstandingR2T {
  readonly ttt: number;
  readonly offset: number;
  readonly length: number;
  received: number;
  nextDataSN: number;
}

export interface R2TRequest {
  readonly ttt: number;
  readonly r2tSN: number;
  readonly offset: number;
  readonly length: number;
}

/**
 * The transport half of one SCSI command: collects its Data-Out (immediate data, unsolicited
 * Data-Out up to FirstBurstLength, then R2T-driven sequences of at most MaxBurstLength with at
 * most MaxOutstandingR2T open) and checks every DataSN and BufferOffset on the way
 * (RFC 7143 §4.2.5, §11.7, §11.8).
 */
export class IscsiTask {
  /** Bytes the device server wants (never more than the initiator offered). */
  readonly wanted: number;
  private readonly parts: Buffer[] = [];
  private kept = 0;
  /** Next buffer offset expected from the initiator (DataPDUInOrder=Yes). */
  private nextOffset: number;
  /** Bytes the initiator will send unsolicited (immediate data included). */
  private readonly unsolicitedEnd: number;
  private unsolicitedDone: boolean;
  private unsolicitedDataSN = 0;
  private readonly r2ts = new Map<number, OutstandingR2T>();
  private nextR2TOffset: number;
  private r2tSN = 0;
  aborted = false;
  finished = false;
  executing = false;
  /** A data digest failed on some Data-Out: the command ends with a CRC error (RFC 7143 §7.8). */
  digestFailed = false;
  /** Solicited bytes this task holds of its connection's budget. */
  solicited = 0;
  readonly done: Promise<void>;
  private settle!: () => void;
  /** Data-In PDUs sent, for ExpDataSN in the response. */
  dataInCount = 0;
  /** Pooled receive buffers holding this command's data, given back once it has executed. */
  private readonly held: Buffer[] = [];

  constructor(
    readonly pdu: ScsiCommandPdu,
    readonly scsi: ScsiTask,
    params: SessionParams,
  ) {
    const edtl = pdu.write ? pdu.expectedDataLength : 0;
    this.wanted = Math.min(edtl, scsi.dataOutLength);
    const immediate = pdu.data.length;
    if (immediate > 0 && !params.immediateData) {
      throw new PduError('ISCSI_ERR_FIELD', 'immediate data sent although ImmediateData=No', RejectReason.ProtocolError);
    }
    if (immediate > edtl || immediate > params.firstBurstLength) {
      throw new PduError('ISCSI_ERR_FIELD', `immediate data of ${immediate} bytes exceeds EDTL or FirstBurstLength`, RejectReason.ProtocolError);
    }
    if (!pdu.final && params.initialR2T) {
      throw new PduError('ISCSI_ERR_FIELD', 'unsolicited Data-Out announced although InitialR2T=Yes', RejectReason.ProtocolError);
    }
    // RFC 7143 §4.2.5.2: without F the initiator sends unsolicited data up to FirstBurstLength.
    this.unsolicitedEnd = pdu.final ? immediate : Math.min(edtl, params.firstBurstLength);
    this.unsolicitedDone = pdu.final || immediate >= this.unsolicitedEnd;
    this.nextOffset = 0;
    this.nextR2TOffset = this.unsolicitedEnd;
    if (immediate > 0) this.accept(pdu.data);
    this.done = new Promise((r) => {
      this.settle = r;
    });
  }

  /** Keeps a pooled receive buffer (see rx-pool.ts) until `releaseData`. */
  hold(pooled: Buffer | undefined): void {
    if (pooled) this.held.push(pooled);
  }

  /** The command has executed (or never will): its receive buffers can be reused. */
  releaseData(): void {
    for (const b of this.held.splice(0)) RX_POOL.release(b);
  }

  /** Marks the task over (response sent, aborted or dropped). */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.settle();
  }

  get itt(): number {
    return this.pdu.itt;
  }

  /** True once every byte the initiator will send has arrived (or been solicited and received). */
  get dataComplete(): boolean {
    return this.unsolicitedDone && this.r2ts.size === 0 && this.nextR2TOffset >= this.wanted;
  }

  /** True while unsolicited Data-Out is still on its way (we must not answer before it ends). */
  get awaitingUnsolicited(): boolean {
    return !this.unsolicitedDone;
  }

  /** The collected Data-Out, in the PDUs' buffers (the SCSI layer copies or joins them). */
  data(): readonly Buffer[] {
    return this.parts;
  }

  private accept(data: Buffer): void {
    const room = this.wanted - this.kept;
    if (room > 0) {
      const take = data.length <= room ? data : data.subarray(0, room);
      this.parts.push(take);
      this.kept += take.length;
    }
    this.nextOffset += data.length;
  }

  /**
   * Takes one Data-Out. Throws PduError('ISCSI_ERR_SEQUENCE') on a DataSN, offset or length
   * violation; the caller ends the task with a DATA PHASE ERROR (ERL 0 has no recovery).
   */
  onDataOut(d: DataOutPdu): void {
    if (d.ttt === RESERVED_TAG) {
      if (this.unsolicitedDone) throw seq('unsolicited Data-Out after the first burst ended');
      if (d.dataSN !== this.unsolicitedDataSN) throw seq(`DataSN ${d.dataSN}, expected ${this.unsolicitedDataSN}`);
      if (d.bufferOffset !== this.nextOffset) throw seq(`BufferOffset ${d.bufferOffset}, expected ${this.nextOffset}`);
      if (d.bufferOffset + d.data.length > this.unsolicitedEnd) throw seq('unsolicited data beyond FirstBurstLength');
      this.unsolicitedDataSN++;
      this.accept(d.data);
      if (d.final) {
        if (this.nextOffset !== this.unsolicitedEnd) throw seq('unsolicited burst ended short of FirstBurstLength');
        this.unsolicitedDone = true;
      }
      return;
    }
    const r = this.r2ts.get(d.ttt);
    if (!r) throw seq(`Data-Out for unknown Target Transfer Tag 0x${d.ttt.toString(16)}`);
    if (d.dataSN !== r.nextDataSN) throw seq(`DataSN ${d.dataSN}, expected ${r.nextDataSN}`);
    if (d.bufferOffset !== r.offset + r.received || d.bufferOffset !== this.nextOffset) {
      throw seq(`BufferOffset ${d.bufferOffset}, expected ${r.offset + r.received}`);
    }
    if (r.received + d.data.length > r.length) throw seq('Data-Out beyond the R2T desired length');
    r.nextDataSN++;
    r.received += d.data.length;
    this.accept(d.data);
    if (d.final) {
      if (r.received !== r.length) throw seq('Data-Out sequence ended short of the R2T desired length');
      this.r2ts.delete(d.ttt);
    } else if (r.received === r.length) {
      throw seq('R2T sequence complete without the F bit');
    }
  }

  /** The R2Ts to send now, within MaxOutstandingR2T and MaxBurstLength (RFC 7143 §11.8). */
  nextR2Ts(params: SessionParams, allocTtt: () => number): R2TRequest[] {
    const out: R2TRequest[] = [];
    while (!this.aborted && this.r2ts.size < params.maxOutstandingR2T && this.nextR2TOffset < this.wanted) {
      const length = Math.min(params.maxBurstLength, this.wanted - this.nextR2TOffset);
      const r: OutstandingR2T = { ttt: allocTtt(), offset: this.nextR2TOffset, length, received: 0, nextDataSN: 0 };
      this.r2ts.set(r.ttt, r);
      out.push({ ttt: r.ttt, r2tSN: this.r2tSN++, offset: r.offset, length });
      this.nextR2TOffset += length;
    }
    return out;
  }
}

function seq(msg: string): PduError {
  return new PduError('ISCSI_ERR_SEQUENCE', msg, RejectReason.ProtocolError);
}
