import * as net from 'node:net';
import { log } from '../../../util/log';
import { StorageError } from '../../errors';
import {
  encodeFrame,
  type Frame,
  FrameReader,
  FrameType,
  handshakeMac,
  json,
  macEquals,
  nonce,
  PROTOCOL_VERSION,
  ProtocolError,
  parseJson,
  readU64,
  u64,
} from './wire';

export interface ReplicaLinkOptions {
  readonly self: string;
  readonly peer: string;
  readonly host: string;
  readonly port: number;
  readonly secret: string;
  /** Bounds a connect plus handshake, and the wait for each batch's ACK. */
  readonly timeoutMs: number;
  /** Pause between connection attempts. */
  readonly retryMs: number;
  /** The link is up: returns the sequence number the stream starts at (the journal's next). */
  onUp(): number;
}

interface InFlight {
  readonly resolve: (r: 'acked' | 'down') => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * The sending end of one replication link (wire.ts): connects to a peer's replication portal,
 * authenticates, and sends each commit group, resolving when the peer has fsynced it. A link
 * that is down, breaks, or does not answer within `timeoutMs` answers 'down' (the group's
 * outcome at the peer is then unknown: the journal goes local-only, declared, either way).
 */
export class ReplicaLink {
  private sock: net.Socket | undefined;
  private up = false;
  private start: number | undefined;
  private nextId = 1;
  private readonly inFlight = new Map<number, InFlight>();
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly o: ReplicaLinkOptions) {}

  get peer(): string {
    return this.o.peer;
  }

  get connected(): boolean {
    return this.up;
  }

  /** Where the current stream starts (the first sequence the peer receives on it). */
  get streamStart(): number | undefined {
    return this.up ? this.start : undefined;
  }

  open(): void {
    if (this.closed || this.sock) return;
    const o = this.o;
    const sock = net.connect({ host: o.host, port: o.port });
    this.sock = sock;
    sock.setNoDelay(true);
    const reader = new FrameReader();
    const mine = nonce();
    let authenticated = false;
    const handshake = setTimeout(() => {
      if (!authenticated) sock.destroy(new Error('no handshake within the time limit'));
    }, o.timeoutMs);
    const onFrame = (f: Frame): void => {
      if (f.type === FrameType.ERROR) throw new ProtocolError(`the peer closed the link: ${f.payload.toString('utf8')}`);
      if (!authenticated) {
        if (f.type === FrameType.CHALLENGE) {
          const c = parseJson(f);
          if (c.node !== o.peer) throw new ProtocolError(`the portal answers as "${String(c.node)}", not "${o.peer}"`);
          if (typeof c.nonce !== 'string') throw new ProtocolError('a bad nonce');
          if (!macEquals(c.mac, handshakeMac(o.secret, 'receiver', mine, c.nonce, o.peer, o.self))) {
            throw new ProtocolError('the peer failed authentication (the cluster secrets differ?)');
          }
          sock.write(Buffer.concat(json(FrameType.PROOF, { mac: handshakeMac(o.secret, 'sender', c.nonce, mine, o.self, o.peer) })));
          return;
        }
        if (f.type !== FrameType.READY) throw new ProtocolError(`unexpected frame type ${f.type} in the handshake`);
        authenticated = true;
        clearTimeout(handshake);
        this.start = o.onUp();
        this.up = true;
        sock.write(Buffer.concat(encodeFrame(FrameType.START, u64(this.start))));
        log.info('replication: link up', { peer: o.peer, streamStart: this.start });
        return;
      }
      const id = readU64(f.payload, 0);
      const w = this.inFlight.get(id);
      if (!w) return;
      this.inFlight.delete(id);
      clearTimeout(w.timer);
      if (f.type === FrameType.ACK) w.resolve('acked');
      else if (f.type === FrameType.NACK) {
        w.reject(new StorageError('fenced', `journal replication: ${f.payload.subarray(8).toString('utf8')}`, { code: 'STORE_ERR_FENCED' }));
      } else throw new ProtocolError(`unexpected frame type ${f.type}`);
    };
    sock.on('connect', () => sock.write(Buffer.concat(json(FrameType.HELLO, { v: PROTOCOL_VERSION, node: o.self, nonce: mine }))));
    sock.on('data', (d: Buffer) => {
      try {
        for (const f of reader.push(d)) onFrame(f);
      } catch (e) {
        sock.destroy(e as Error);
      }
    });
    sock.on('error', (e) => {
      if (this.up || authenticated) log.warn('replication: link error', { peer: o.peer, error: e.message });
      else log.debug('replication: cannot reach the peer', { peer: o.peer, error: e.message });
    });
    sock.on('close', () => {
      clearTimeout(handshake);
      const was = this.up;
      this.up = false;
      this.sock = undefined;
      for (const [id, w] of this.inFlight) {
        clearTimeout(w.timer);
        this.inFlight.delete(id);
        w.resolve('down');
      }
      if (was) log.warn('replication: link down; journal writes go local-only until it is back', { peer: o.peer });
      if (!this.closed) {
        this.retry = setTimeout(() => this.open(), o.retryMs);
        this.retry.unref();
      }
    });
  }

  /** Sends one commit group; 'acked' once the peer fsynced it, 'down' if it may not have. */
  send(parts: readonly Buffer[], bytes: number): Promise<'acked' | 'down'> {
    const sock = this.sock;
    if (!this.up || !sock) return Promise.resolve('down');
    const id = this.nextId++;
    return new Promise<'acked' | 'down'>((resolve, reject) => {
      const timer = setTimeout(() => {
        log.warn('replication: the peer did not acknowledge a journal group in time; dropping the link', { peer: this.o.peer, ms: this.o.timeoutMs });
        sock.destroy();
      }, this.o.timeoutMs);
      this.inFlight.set(id, { resolve, reject, timer });
      const head = Buffer.alloc(5);
      head.writeUInt32BE(1 + 8 + bytes, 0);
      head.writeUInt8(FrameType.BATCH, 4);
      sock.cork();
      sock.write(head);
      sock.write(u64(id));
      for (const p of parts) sock.write(p);
      sock.uncork();
    });
  }

  /** Tells the peer every earlier record is in S3, and where this stream started. */
  watermark(uploadedBelow: number): void {
    if (!this.up || !this.sock || this.start === undefined) return;
    this.sock.write(Buffer.concat(encodeFrame(FrameType.WATERMARK, [u64(uploadedBelow), u64(this.start)])));
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.sock?.destroy();
  }
}
