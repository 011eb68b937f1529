import { encodeNopOut } from '../../src/iscsi/pdu';
import { TUR } from './cdb';
import { TestInitiator } from './initiator';

export interface Outcome {
  readonly status: number;
  readonly sense: Buffer;
  readonly data: Buffer;
}

/**
 * Many commands in flight on one TestInitiator session (a QD-n client): answers are routed to
 * their command by ITT, NOP-In pings are answered, and a closed connection fails every command
 * still waiting (its outcome unknown: it may or may not have been done).
 */
export class Pipeline {
  private readonly waiting = new Map<number, { parts: Buffer[]; resolve: (o: Outcome) => void; reject: (e: Error) => void }>();
  private closed = false;

  private constructor(readonly ini: TestInitiator) {
    void this.pump();
  }

  /** `isid`: a second session of the same initiator needs its own (the same one reinstates the first, RFC 7143 §6.3.5). */
  static async login(port: number, target: string, keys: Array<[string, string]> = [], isid?: Buffer): Promise<Pipeline> {
    const ini = await TestInitiator.connect(port);
    await ini.login({ target, initiatorName: `iqn.2026-12.test:pipeline-${process.pid}`, keys, ...(isid ? { isid } : {}) });
    const p = new Pipeline(ini);
    // A new I_T nexus starts with a unit attention (SAM-5 §5.14: POWER ON, RESET): clear it.
    for (let k = 0; k < 4 && (await p.run(TUR)).status !== 0; k++);
    return p;
  }

  run(cdb: Buffer, opts: { read?: number; write?: Buffer } = {}): Promise<Outcome> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise<Outcome>((resolve, reject) => {
      const itt = this.ini.itt++;
      this.waiting.set(itt, { parts: [], resolve, reject });
      this.ini.command(cdb, { ...opts, itt });
    });
  }

  close(): void {
    this.ini.close();
  }

  private async pump(): Promise<void> {
    for (;;) {
      const p = await this.ini.recv(600_000);
      if (p === 'closed' || p === 'timeout') break;
      if (p.kind === 'nop-in') {
        if (p.ttt !== 0xffffffff) {
          this.ini.send(
            encodeNopOut({
              immediate: true,
              lun: p.lun,
              itt: 0xffffffff,
              ttt: p.ttt,
              cmdSN: this.ini.cmdSN,
              expStatSN: this.ini.expStatSN,
              data: Buffer.alloc(0),
            }),
          );
        }
        continue;
      }
      if (p.kind !== 'data-in' && p.kind !== 'scsi-response') continue;
      const w = this.waiting.get(p.itt);
      if (!w) continue;
      if (p.kind === 'data-in') {
        w.parts.push(p.data);
        if (!p.status) continue;
        this.waiting.delete(p.itt);
        w.resolve({ status: p.status.status, sense: Buffer.alloc(0), data: Buffer.concat(w.parts) });
      } else {
        this.waiting.delete(p.itt);
        w.resolve({ status: p.status, sense: p.sense, data: Buffer.concat(w.parts) });
      }
    }
    this.closed = true;
    for (const w of this.waiting.values()) w.reject(new Error('connection closed'));
    this.waiting.clear();
  }
}
