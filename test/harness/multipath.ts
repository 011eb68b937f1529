import assert from 'node:assert/strict';
import { senseCodeOf } from '../../src/scsi/sense';
import { read10, TUR, write10 } from '../lib/cdb';
import { TestInitiator } from '../lib/initiator';
import { type TargetProcess, TEST_IQN } from './target';

/**
 * Paths to the nodes of an HA pair (raw iSCSI sessions) and a writer that moves between them
 * the way dm-multipath does with ALUA sense: to the other path on 02/04/0B or a dead
 * connection; 02/04/0A, 02/04/01 and unit attentions are retried on the same one.
 */

export interface Answer {
  readonly status: number;
  readonly sense: Buffer;
  readonly data: Buffer;
}

export const GOOD = 0;
export const CHECK = 2;
export const CONFLICT = 0x18;

/** One path: a logged-in session to one node's portal. */
export class Path {
  private constructor(
    readonly node: TargetProcess,
    private readonly c: TestInitiator,
  ) {}

  static async open(node: TargetProcess, initiatorName = 'iqn.2026-12.test:ha-host', isid?: Buffer): Promise<Path> {
    const c = await TestInitiator.connect(node.port);
    await c.login({ initiatorName, target: TEST_IQN, ...(isid ? { isid } : {}) });
    const p = new Path(node, c);
    await p.clearUa();
    return p;
  }

  exec(cdb: Buffer, opts: { read?: number; write?: Buffer } = {}, timeoutMs = 30_000): Promise<Answer> {
    return this.c.response(this.c.command(cdb, opts), timeoutMs);
  }

  /** `exec`, again after each unit attention (at most 8: an ALUA transition raises some). */
  async execAfterUa(cdb: Buffer, opts: { read?: number; write?: Buffer } = {}): Promise<Answer> {
    for (let i = 0; ; i++) {
      const r = await this.exec(cdb, opts);
      if (code(r) !== '06' || i >= 8) return r;
    }
  }

  /** TEST UNIT READY until no unit attention is left (bounded). */
  async clearUa(): Promise<string[]> {
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await this.exec(TUR);
      if (r.status === GOOD || code(r) !== '06') return seen;
      seen.push(ascOf(r));
    }
    return seen;
  }

  close(): void {
    this.c.close();
  }
}

/** "KEY/ASC/ASCQ" of a CHECK CONDITION, e.g. "02/04/0b". */
export function ascOf(r: Answer): string {
  const s = senseCodeOf(r.sense);
  const h = (n: number): string => n.toString(16).padStart(2, '0');
  return `${h(s.key)}/${h(s.asc)}/${h(s.ascq)}`;
}

export function code(r: Answer): string {
  return r.status === CHECK ? ascOf(r).slice(0, 2) : '';
}

export const block = (lba: number, gen: number): Buffer => {
  const b = Buffer.alloc(512, gen & 0xff);
  b.writeUInt32BE(lba, 0);
  b.writeUInt32BE(gen, 4);
  return b;
};

/**
 * Writes blocks one at a time the way dm-multipath does with ALUA: 02/04/0B or a dead
 * connection moves to the other path, 02/04/0A, 02/04/01 and unit attentions are retried after a short pause; any
 * other failure is an I/O error. Writes LBAs first..first+lbas-1 (several writers: disjoint
 * ranges). Returns the last generation acknowledged per LBA.
 */
export async function multipathWriter(paths: Path[], lbas: number, stop: () => boolean, first = 0, firstGen = 1) {
  const acked = new Map<number, number>();
  const errors: string[] = [];
  const switches: number[] = [];
  let current = 0;
  let gen = firstGen;
  const t0 = Date.now();
  while (!stop() && errors.length === 0) {
    const lba = first + ((gen * 7919) % lbas);
    for (let attempt = 0; ; attempt++) {
      const r = await paths[current]
        .exec(write10(lba, 1), { write: block(lba, gen) })
        .catch((e: Error) => ({ status: -1, sense: Buffer.alloc(0), data: Buffer.from(e.message) }));
      if (r.status === GOOD) {
        acked.set(lba, gen);
        break;
      }
      const why = r.status === CHECK ? ascOf(r) : `status ${r.status}`;
      if (attempt > 400) {
        errors.push(`LBA ${lba}: gave up after ${attempt} tries (${why})`);
        break;
      }
      // A path whose connection is gone (its node died) or that is standby: the other path.
      if (why === '02/04/0b' || r.status === -1) {
        current = 1 - current;
        switches.push(Date.now() - t0);
      } else if (!(why === '02/04/0a' || why === '02/04/01' || why.startsWith('06/'))) {
        errors.push(`LBA ${lba}: ${why}`);
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    gen++;
  }
  return { acked, errors, switches, current };
}

/** Reads back every acknowledged block through `p`. */
export async function verify(p: Path, acked: ReadonlyMap<number, number>): Promise<void> {
  for (const [lba, gen] of acked) {
    const r = await p.exec(read10(lba, 1), { read: 512 });
    assert.equal(r.status, GOOD, `read LBA ${lba}: ${r.status === CHECK ? ascOf(r) : r.status}`);
    assert.ok(r.data.equals(block(lba, gen)), `LBA ${lba}: expected generation ${gen}, got ${r.data.readUInt32BE(4)}`);
  }
}
