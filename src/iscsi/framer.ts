import { digestOf } from './digest';
import { PduError, RejectReason } from './errors';
import { ahsLengthOf, BHS_LENGTH, dataLengthOf, type Frame, pad4 } from './pdu/frame';
import { RX_POOL, RxBufferPool } from './rx-pool';

export interface ReceivedFrame extends Frame {
  /** The data digest did not match; the caller decides the recovery (RFC 7143 §7.8). */
  readonly dataDigestError: boolean;
  /**
   * The data segment lives in a buffer from RX_POOL: whoever consumed the data gives it back
   * (RX_POOL.release) once nothing refers to it any more; if nobody does, it is collected.
   */
  readonly pooled?: Buffer;
}

/**
 * Turns a TCP byte stream into whole PDUs (RFC 7143 §11.2: BHS, AHS, header digest, padded
 * data segment, data digest). It never trusts a length before checking it against the limit
 * it was given, and never buffers more than one PDU of at most that size beyond what arrived.
 */
export class Framer {
  headerDigest = false;
  dataDigest = false;
  private readonly chunks: Buffer[] = [];
  private head = 0; // read offset into chunks[0]
  private buffered = 0;
  /** The last consume() gathered into a buffer from RX_POOL. */
  private lastGatherPooled = false;

  constructor(public maxDataSegmentLength: number) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete PDU, or null when more bytes are needed. Throws PduError on bad framing. */
  next(): ReceivedFrame | null {
    if (this.buffered < BHS_LENGTH) return null;
    const peek = this.peek(BHS_LENGTH);
    const ahsLength = ahsLengthOf(peek);
    const dataLength = dataLengthOf(peek);
    if (dataLength > this.maxDataSegmentLength) {
      const e = new PduError(
        'ISCSI_ERR_DATA_TOO_LONG',
        `DataSegmentLength ${dataLength} exceeds MaxRecvDataSegmentLength ${this.maxDataSegmentLength}`,
        RejectReason.ProtocolError,
        true,
      );
      e.header = Buffer.from(peek);
      throw e;
    }
    const hd = this.headerDigest ? 4 : 0;
    const dd = this.dataDigest && dataLength > 0 ? 4 : 0;
    const total = BHS_LENGTH + ahsLength + hd + pad4(dataLength) + dd;
    if (this.buffered < total) return null;

    const header = this.consume(BHS_LENGTH + ahsLength);
    const bhs = header.subarray(0, BHS_LENGTH);
    const ahs = header.subarray(BHS_LENGTH);
    if (hd) {
      const got = this.consume(4).readUInt32LE(0);
      if (got !== digestOf(bhs, ahs)) {
        // RFC 7143 §7.8: the lengths in a header with a bad digest cannot be trusted, so the
        // PDU is discarded without a Reject and, having no sync layer, the connection closed.
        throw new PduError('ISCSI_ERR_HEADER_DIGEST', 'header digest mismatch', RejectReason.ProtocolError, true);
      }
    }
    let data: Buffer = Buffer.alloc(0);
    let dataDigestError = false;
    let pooled: Buffer | undefined;
    if (dataLength > 0) {
      const padded = this.consume(pad4(dataLength), true);
      if (this.lastGatherPooled) pooled = padded;
      data = padded.subarray(0, dataLength);
      if (dd) {
        const got = this.consume(4).readUInt32LE(0);
        dataDigestError = got !== digestOf(padded);
      }
    }
    return pooled ? { bhs, ahs, data, dataDigestError, pooled } : { bhs, ahs, data, dataDigestError };
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    return this.gather(n, false);
  }

  /** A view when the bytes lie in one chunk, else one copy (pg-protocol's approach). */
  private consume(n: number, data = false): Buffer {
    this.lastGatherPooled = false;
    const first = this.chunks[0];
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      this.buffered -= n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      return out;
    }
    return this.gather(n, true, data);
  }

  private gather(n: number, advance: boolean, data = false): Buffer {
    // Large data segments gather into a pooled buffer (see rx-pool.ts).
    const pooled = data && RxBufferPool.pools(n);
    this.lastGatherPooled = pooled;
    const out = pooled ? RX_POOL.acquire(n) : Buffer.allocUnsafe(n);
    let filled = 0;
    let i = 0;
    let head = this.head;
    while (filled < n) {
      const c = this.chunks[i];
      const take = Math.min(c.length - head, n - filled);
      c.copy(out, filled, head, head + take);
      filled += take;
      head += take;
      if (head === c.length) {
        i++;
        head = 0;
      }
    }
    if (advance) {
      this.chunks.splice(0, i);
      this.head = head;
      this.buffered -= n;
    }
    return out;
  }
}
