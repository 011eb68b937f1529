import * as net from 'node:net';
import { Framer } from '../../src/iscsi/framer';
import { encodeDataOut, opcodeOf } from '../../src/iscsi/pdu';
import { DISRUPTIVE_BUILDERS, FFP_BUILDERS, loginCorpus, normalLogin, type Seq, wire } from './corpus';
import { mutate, randomPdu } from './mutate';
import { Rng } from './rng';

export interface FuzzOptions {
  readonly port: number;
  readonly target: string;
  /** Stop after this many inputs ... */
  readonly inputs: number;
  /** ... or after this many seconds, whichever comes first. */
  readonly seconds: number;
  readonly seed: number;
  /** Parallel fuzzing connections. */
  readonly workers?: number;
  readonly onProgress?: (r: FuzzReport) => void;
}

export interface FuzzReport {
  inputs: number;
  /** Inputs sent during login (mutated Login Requests, random bytes). */
  loginInputs: number;
  /** Inputs sent in the full feature phase of a logged-in session. */
  ffpInputs: number;
  connections: number;
  /** Connections the target closed on us (protocol errors, logouts). */
  closedByTarget: number;
  /** Target PDUs received. */
  received: number;
  /** The target sent bytes that do not frame as iSCSI PDUs (a target bug). */
  malformedFromTarget: number;
  seconds: number;
}

/** One TCP connection to the target, collecting what it sends back. */
class Conn {
  private readonly framer = new Framer(16 * 1024 * 1024);
  closed = false;
  received = 0;
  malformed = 0;
  seq: Seq = { itt: 1, cmdSN: 1, expStatSN: 0 };
  loggedIn = false;
  /** Data-Out answering an R2T, offered as the next input. */
  readonly pendingData: Buffer[] = [];
  private waiter: (() => void) | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.framer.push(chunk);
      try {
        for (let f = this.framer.next(); f; f = this.framer.next()) {
          this.received++;
          const op = opcodeOf(f.bhs);
          // Sequence numbers from the target keep our commands inside its window.
          this.seq.cmdSN = f.bhs.readUInt32BE(28);
          if (op === 0x23 && (f.bhs[36] !== 0 || f.bhs[37] !== 0)) this.closed = true; // login refused
          if (op === 0x23) this.loggedIn = f.bhs[36] === 0 && (f.bhs[1] & 0x80) !== 0;
          if (op !== 0x31) this.seq.expStatSN = (f.bhs.readUInt32BE(24) + 1) >>> 0;
          if (op === 0x31 && this.pendingData.length < 4) {
            const itt = f.bhs.readUInt32BE(16);
            const ttt = f.bhs.readUInt32BE(20);
            const offset = f.bhs.readUInt32BE(40);
            const length = Math.min(f.bhs.readUInt32BE(44), 65536);
            this.pendingData.push(
              wire(
                encodeDataOut({
                  final: true,
                  lun: 0n,
                  itt,
                  ttt,
                  expStatSN: this.seq.expStatSN,
                  dataSN: 0,
                  bufferOffset: offset,
                  data: Buffer.alloc(length, 0x3c),
                }),
              ),
            );
          }
        }
      } catch {
        this.malformed++;
        socket.destroy();
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<Conn | undefined> {
    return new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new Conn(s)));
      s.once('error', () => resolve(undefined));
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  write(b: Buffer): void {
    if (!this.closed) this.socket.write(b);
  }

  /** Waits until something arrives, the connection closes, or `ms` pass. */
  settle(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        resolve();
      }, ms);
      this.waiter = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Network fuzzing of a running target: random and mutated PDUs from a corpus of valid ones,
 * during login and in the full feature phase of real sessions. Reproducible from its seed.
 */
export async function runNetworkFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const report: FuzzReport = {
    inputs: 0,
    loginInputs: 0,
    ffpInputs: 0,
    connections: 0,
    closedByTarget: 0,
    received: 0,
    malformedFromTarget: 0,
    seconds: 0,
  };
  const started = Date.now();
  const deadline = started + o.seconds * 1000;
  const more = (): boolean => report.inputs < o.inputs && Date.now() < deadline;
  const logins = loginCorpus(o.target);
  let progressAt = 0;

  const worker = async (w: number): Promise<void> => {
    const rng = new Rng(o.seed * 7919 + w);
    while (more()) {
      const c = await Conn.open(o.port);
      if (!c) throw new Error('the target stopped accepting connections');
      report.connections++;
      if (rng.chance(0.2)) {
        // Login phase: mutated Login Requests or random bytes on a fresh connection.
        for (let i = 0, n = 1 + rng.int(3); i < n && !c.closed && more(); i++) {
          c.write(rng.chance(0.15) ? randomPdu(rng) : mutate(rng, rng.pick(logins), rng.pick(logins)));
          report.inputs++;
          report.loginInputs++;
          await c.settle(5);
        }
      } else {
        const isid = Buffer.from([0x40, 0, 0, 0, w & 0xff, rng.int(256)]);
        c.write(normalLogin(`iqn.2026-11.fuzz:w${w}`, o.target, isid));
        for (let i = 0; i < 50 && !c.loggedIn && !c.closed; i++) await c.settle(20);
        const n = 20 + rng.int(200);
        for (let i = 0; i < n && c.loggedIn && !c.closed && more(); i++) {
          const s = c.seq;
          let input: Buffer;
          const pending = c.pendingData.shift();
          if (pending && rng.chance(0.7)) input = rng.chance(0.7) ? pending : mutate(rng, pending, pending);
          else {
            const valid = wire(rng.pick(rng.chance(0.01) ? DISRUPTIVE_BUILDERS : FFP_BUILDERS)(s));
            const roll = rng.u32() % 100;
            input = roll < 30 ? valid : roll < 95 ? mutate(rng, valid, wire(rng.pick(FFP_BUILDERS)(s))) : randomPdu(rng);
          }
          s.itt = (s.itt + 1) >>> 0;
          // A non-immediate command consumes a CmdSN (RFC 7143 §3.2.2.1); the target's ExpCmdSN
          // resynchronizes us whenever it answers.
          if (input.length >= 48 && (input[0] & 0x40) === 0 && [0x00, 0x01, 0x02, 0x04, 0x06].includes(input[0] & 0x3f)) {
            s.cmdSN = (s.cmdSN + 1) >>> 0;
          }
          c.write(input);
          report.inputs++;
          report.ffpInputs++;
          if (i % 8 === 7) await c.settle(10);
        }
        await c.settle(5);
      }
      if (c.closed) report.closedByTarget++;
      report.received += c.received;
      report.malformedFromTarget += c.malformed;
      c.destroy();
      if (o.onProgress && report.inputs - progressAt >= 10_000) {
        progressAt = report.inputs;
        report.seconds = (Date.now() - started) / 1000;
        o.onProgress(report);
      }
    }
  };
  await Promise.all(Array.from({ length: o.workers ?? 2 }, (_, w) => worker(w)));
  report.seconds = (Date.now() - started) / 1000;
  return report;
}
