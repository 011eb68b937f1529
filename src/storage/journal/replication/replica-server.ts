import * as net from 'node:net';
import { log } from '../../../util/log';
import { scanSegment } from '../segment-scan';
import { ReplicaStore } from './replica-store';
import type { ReplicationStats } from './stats';
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

export interface ReplicaServerOptions {
  readonly host: string;
  readonly port: number;
  readonly self: string;
  /** The nodes allowed to send (every other node of the cluster). */
  readonly peers: readonly string[];
  readonly secret: string;
  readonly journalDir: string;
  /**
   * False once this node is taking or has taken the LUN (32 hex digits): a deposed holder's
   * records are refused from then on, so none is acknowledged after the takeover read the
   * replica (the journal's fence, which does not rest on timing).
   */
  accepts(lun: string): boolean;
  readonly stats: ReplicationStats;
  /** A connection that completes no handshake in this time, or is silent this long, is closed. */
  readonly timeoutMs?: number;
}

/**
 * Receives the journal records the active nodes of journal LUNs replicate to this node
 * (docs/ha.md, "Journal replication") and keeps them, one ReplicaStore per peer, for the
 * takeover of a LUN whose holder died.
 */
export class ReplicaServer {
  private readonly server: net.Server;
  private readonly live = new Map<string, net.Socket>();
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly o: ReplicaServerOptions,
    private readonly stores: ReadonlyMap<string, ReplicaStore>,
  ) {
    this.server = net.createServer((s) => this.accept(s));
  }

  static async start(o: ReplicaServerOptions): Promise<ReplicaServer> {
    const stores = new Map<string, ReplicaStore>();
    for (const p of o.peers) stores.set(p, await ReplicaStore.open(o.journalDir, p));
    const s = new ReplicaServer(o, stores);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(o.port, o.host, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    return s;
  }

  /** What this node holds of `node`'s journal. */
  store(node: string): ReplicaStore | undefined {
    return this.stores.get(node);
  }

  /** True while `node` has an authenticated connection here. */
  connected(node: string): boolean {
    return this.live.has(node);
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : this.o.port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    for (const st of this.stores.values()) await st.close().catch(() => undefined);
  }

  private accept(sock: net.Socket): void {
    const o = this.o;
    const timeoutMs = o.timeoutMs ?? 10_000;
    this.sockets.add(sock);
    sock.setNoDelay(true);
    sock.setTimeout(timeoutMs, () => sock.destroy());
    const reader = new FrameReader();
    const mine = nonce();
    let peer: string | undefined;
    let theirs: string | undefined;
    let ready = false;
    let queue: Promise<void> = Promise.resolve();
    const send = (parts: Buffer[]): void => {
      if (!sock.destroyed) sock.write(Buffer.concat(parts));
    };
    const fail = (why: string): void => {
      log.warn('replication: closing a connection', { from: peer ?? sock.remoteAddress, why });
      send(encodeFrame(FrameType.ERROR, Buffer.from(why)));
      sock.end();
      sock.destroy();
    };
    const handle = async (f: Frame): Promise<void> => {
      if (!peer || !theirs) {
        if (f.type !== FrameType.HELLO) throw new ProtocolError('expected HELLO');
        const h = parseJson(f);
        if (h.v !== PROTOCOL_VERSION) throw new ProtocolError(`protocol version ${String(h.v)}`);
        if (typeof h.node !== 'string' || !this.stores.has(h.node)) throw new ProtocolError(`"${String(h.node)}" is not a peer of this node`);
        if (typeof h.nonce !== 'string' || h.nonce.length !== 64) throw new ProtocolError('a bad nonce');
        peer = h.node;
        theirs = h.nonce;
        send(json(FrameType.CHALLENGE, { node: o.self, nonce: mine, mac: handshakeMac(o.secret, 'receiver', theirs, mine, o.self, peer) }));
        return;
      }
      const store = this.stores.get(peer) as ReplicaStore;
      if (!ready) {
        if (f.type !== FrameType.PROOF) throw new ProtocolError('expected PROOF');
        if (!macEquals(parseJson(f).mac, handshakeMac(o.secret, 'sender', mine, theirs, peer, o.self))) {
          o.stats.authFailures++;
          throw new ProtocolError('authentication failed (the cluster secrets differ?)');
        }
        const old = this.live.get(peer);
        if (old) old.destroy();
        this.live.set(peer, sock);
        await store.begin();
        ready = true;
        send(encodeFrame(FrameType.READY));
        log.info('replication: a peer connected', { node: peer });
        return;
      }
      if (f.type === FrameType.START) {
        await store.started(readU64(f.payload, 0));
        return;
      }
      if (f.type === FrameType.WATERMARK) {
        store.watermark(readU64(f.payload, 0), readU64(f.payload, 8));
        return;
      }
      if (f.type !== FrameType.BATCH) throw new ProtocolError(`unexpected frame type ${f.type}`);
      const id = readU64(f.payload, 0);
      const bytes = f.payload.subarray(8);
      const scan = scanSegment(bytes);
      if (scan.tail !== 'clean' || scan.records.length === 0) throw new ProtocolError(`batch ${id} does not verify (${scan.damage?.why ?? 'empty'})`);
      const taken = scan.records.find((r) => !o.accepts(r.lun));
      if (taken) {
        o.stats.refusedBatches++;
        send(encodeFrame(FrameType.NACK, [u64(id), Buffer.from(`node ${o.self} has taken LUN ${taken.lun}`)]));
        return;
      }
      await store.append(Buffer.from(bytes), (scan.records.at(-1) as { sequence: number }).sequence);
      o.stats.receivedBytes += bytes.length;
      send(encodeFrame(FrameType.ACK, u64(id)));
    };
    sock.on('data', (d: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(d);
      } catch (e) {
        fail((e as Error).message);
        return;
      }
      for (const f of frames) {
        queue = queue.then(() => handle(f)).catch((e: unknown) => fail((e as Error).message));
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.sockets.delete(sock);
      if (peer && this.live.get(peer) === sock) {
        this.live.delete(peer);
        log.warn('replication: a peer disconnected', { node: peer });
      }
    });
  }
}
