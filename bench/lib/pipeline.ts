import { Rng } from '../../test/fuzz/rng';
import { read16, write16 } from '../../test/lib/cdb';
import { TestInitiator } from '../../test/lib/initiator';

/**
 * A pipelined iSCSI client for load generation: commands with immediate data, many in flight,
 * completions matched by ITT. It exists because none of the packaged clients does random
 * writes against an iscsi:// URL (qemu-img bench is sequential, iscsi-perf reads only).
 */
export class Pipeline {
  private readonly pending = new Map<number, (status: number) => void>();
  private closed = false;

  private constructor(private readonly c: TestInitiator) {
    void this.readLoop();
  }

  static async open(port: number, target: string): Promise<Pipeline> {
    const c = await TestInitiator.connect(port);
    await c.login({
      target,
      initiatorName: `iqn.2026-11.io.s3tgt:bench-${process.pid}`,
      keys: [
        ['FirstBurstLength', '262144'],
        ['MaxBurstLength', '1048576'],
      ],
    });
    const p = new Pipeline(c);
    // Clear the power-on unit attention.
    await p.run(Buffer.from([0, 0, 0, 0, 0, 0]));
    return p;
  }

  /** One reader for the connection: every completion goes to the command waiting for it. */
  private async readLoop(): Promise<void> {
    while (!this.closed) {
      const r = await this.c.recv(1000);
      if (r === 'timeout') continue;
      if (r === 'closed') break;
      if (r.kind === 'scsi-response' || (r.kind === 'data-in' && r.status)) {
        const status = r.kind === 'scsi-response' ? r.status : (r.status?.status ?? 0);
        const done = this.pending.get(r.itt);
        this.pending.delete(r.itt);
        done?.(status);
      }
    }
    for (const done of this.pending.values()) done(-1);
    this.pending.clear();
  }

  run(cdb: Buffer, io: { write?: Buffer; read?: number } = {}): Promise<number> {
    const p = new Promise<number>((resolve) => {
      const itt = this.c.command(cdb, io);
      this.pending.set(itt, resolve);
    });
    return p;
  }

  close(): void {
    this.closed = true;
    this.c.close();
  }
}

export const SYNCHRONIZE_CACHE_16 = Buffer.from([0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/**
 * `count` random 4 KiB reads or writes over the first `spanBytes` of LUN 0 at queue depth `qd`
 * (writes end with SYNCHRONIZE CACHE, inside the time); returns IOPS.
 */
export async function randomIo(
  port: number,
  target: string,
  opts: { kind: 'read' | 'write'; count: number; qd: number; spanBytes: number; seed?: number },
): Promise<number> {
  const p = await Pipeline.open(port, target);
  // mulberry32: the low bits of the LCG used before cycled through a few hundred 64 KiB
  // segments, so a cache kept them and the random-read row measured cache hits.
  const rng = new Rng(opts.seed ?? 12345);
  const data = Buffer.alloc(4096, 0x5a);
  const slots = opts.spanBytes / 4096;
  const t0 = process.hrtime.bigint();
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < opts.count) {
      issued++;
      const lba = BigInt(rng.int(slots) * 8);
      const st = opts.kind === 'write' ? await p.run(write16(lba, 8), { write: data }) : await p.run(read16(lba, 8), { read: 4096 });
      if (st !== 0) throw new Error(`${opts.kind} failed with status ${st}`);
    }
  };
  await Promise.all(Array.from({ length: opts.qd }, worker));
  if (opts.kind === 'write') {
    const st = await p.run(SYNCHRONIZE_CACHE_16);
    if (st !== 0) throw new Error(`SYNCHRONIZE CACHE failed with status ${st}`);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  p.close();
  return opts.count / seconds;
}
