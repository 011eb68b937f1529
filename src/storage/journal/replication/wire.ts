import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The journal replication protocol between cluster nodes (docs/ha.md, "Journal
 * replication"). One TCP connection per (sender, receiver) pair, opened by the sender. Every
 * frame is a 4-byte big-endian length (of what follows), a 1-byte type and a payload.
 *
 *   HELLO      s→r  JSON {v, node, nonce}             the sender names itself
 *   CHALLENGE  r→s  JSON {node, nonce, mac}           the receiver proves it knows the secret
 *   PROOF      s→r  JSON {mac}                        the sender proves it
 *   READY      r→s  (empty)                           records may flow
 *   START      s→r  u64 sequence                      the stream's first sequence (sent first)
 *   BATCH      s→r  u64 id, records as in a segment    one commit group of the sender's journal
 *   ACK        r→s  u64 id                            the batch is fsynced at the receiver
 *   NACK       r→s  u64 id, UTF-8 reason              refused (the receiver took one of its LUNs)
 *   WATERMARK  s→r  u64 sequence                      every earlier record of the sender is in S3
 *   ERROR      both UTF-8 reason                      then the connection closes
 *
 * The handshake authenticates both ends with HMAC-SHA256 over both nonces and both names
 * (neither end can be replayed or reflected); records carry their own CRC32C. Nothing is
 * encrypted: the link belongs on the cluster's private network.
 */
export const FrameType = {
  HELLO: 1,
  CHALLENGE: 2,
  PROOF: 3,
  READY: 4,
  BATCH: 5,
  ACK: 6,
  NACK: 7,
  WATERMARK: 8,
  ERROR: 9,
  START: 10,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

/** The largest frame accepted: a commit group is at most 4 MiB, or one record of up to a chunk. */
export const MAX_FRAME = 16 * 1024 * 1024;
export const PROTOCOL_VERSION = 1;

export interface Frame {
  readonly type: number;
  readonly payload: Buffer;
}

export function encodeFrame(type: FrameTypeCode, payload: Buffer | readonly Buffer[] = []): Buffer[] {
  const parts = Buffer.isBuffer(payload) ? [payload] : [...payload];
  const len = parts.reduce((n, p) => n + p.length, 0) + 1;
  const head = Buffer.alloc(5);
  head.writeUInt32BE(len, 0);
  head.writeUInt8(type, 4);
  return [head, ...parts];
}

export const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

export const readU64 = (b: Buffer, at = 0): number => {
  if (b.length < at + 8) throw new ProtocolError('a frame is shorter than its 64-bit field');
  return Number(b.readBigUInt64BE(at));
};

export class ProtocolError extends Error {}

/** Cuts a byte stream into frames; throws a ProtocolError on a frame no peer would send. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(data: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    const out: Frame[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len < 1 || len > MAX_FRAME + 9) throw new ProtocolError(`a frame of ${len} bytes`);
      if (this.buf.length < 4 + len) break;
      out.push({ type: this.buf[4], payload: this.buf.subarray(5, 4 + len) });
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }
}

export const nonce = (): string => randomBytes(32).toString('hex');

/** The MAC one end sends: its role, both nonces (its peer's first) and both names (its own first). */
export function handshakeMac(secret: string, role: 'sender' | 'receiver', peerNonce: string, ownNonce: string, own: string, peer: string): string {
  return createHmac('sha256', secret)
    .update(`s3tgt-replication/${PROTOCOL_VERSION}\n${role}\n${peerNonce}\n${ownNonce}\n${own}\n${peer}`)
    .digest('hex');
}

export function macEquals(a: unknown, b: string): boolean {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

export function json(type: FrameTypeCode, v: object): Buffer[] {
  return encodeFrame(type, Buffer.from(JSON.stringify(v)));
}

export function parseJson(f: Frame): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(f.payload.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // falls through
  }
  throw new ProtocolError(`frame type ${f.type}: not a JSON object`);
}
