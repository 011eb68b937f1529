import { mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { Rgw } from '../test/harness/rgw';
import { rssMiB } from '../test/harness/rss';
import { s3Target } from '../test/harness/s3-target';
import { TargetProcess, TEST_IQN } from '../test/harness/target';
import { TestInitiator } from '../test/lib/initiator';
import { READ_CAPACITY10 } from '../test/personality/cdbs';
import { Tgtd } from './protocol-path';

/** SAM-5 single-level LUN address (peripheral method) as the 8-byte field of a SCSI Command PDU. */
const lunField = (lun: number): bigint => BigInt(lun) << 48n;

export interface LoginStorm {
  /** From the first connect to the last session's READ CAPACITY answer (s). */
  readonly allSeconds: number;
  /** The slowest session's connect + login + READ CAPACITY (s). */
  readonly slowestSeconds: number;
  readonly failed: number;
}

/**
 * `n` sessions at once against one target (an ESXi cluster logging back in after a network
 * blip): each connects, logs in (its own ISID) and reads the capacity of the LUN.
 */
async function loginStorm(port: number, target: string, lun: number, n: number): Promise<LoginStorm> {
  const t0 = performance.now();
  const clients: TestInitiator[] = [];
  let slowest = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const start = performance.now();
      try {
        const c = await TestInitiator.connect(port);
        clients.push(c);
        const isid = Buffer.from([0x40, 0, 0, 0, (i >> 8) & 0xff, i & 0xff]);
        await c.login({ initiatorName: `iqn.2026-12.io.s3tgt.bench:host${i % 32}`, target, isid });
        // The first command of a new I_T nexus may get a unit attention (power on / reset).
        for (let k = 0; k < 3; k++) {
          const r = await c.response(c.command(READ_CAPACITY10, { read: 8, lun: lunField(lun) }), 30_000);
          if (r.status === 0) break;
          if (k === 2) throw new Error(`READ CAPACITY status ${r.status}`);
        }
        slowest = Math.max(slowest, performance.now() - start);
      } catch {
        failed++;
      }
    }),
  );
  const allSeconds = (performance.now() - t0) / 1000;
  for (const c of clients) c.close();
  return { allSeconds, slowestSeconds: slowest / 1000, failed };
}

export interface ScaleResult {
  readonly sessions: number;
  readonly tgt: LoginStorm;
  readonly s3tgt: LoginStorm;
  readonly luns: number;
  readonly lunSize: string;
  /** Start to ready with every LUN open: the first start creates them, the second opens them (s). */
  readonly createSeconds: number;
  readonly openSeconds: number;
  /** Resident set 5 s after the second start, nothing connected (MiB). */
  readonly idleRssMiB: number;
}

/** Issue 18's scale rows: a login storm against tgt and s3tgt, and one process with many big S3 LUNs. */
export async function scaleBench(rgw: Rgw, opts: { quick: boolean }): Promise<ScaleResult> {
  const sessions = 256;
  const dir = mkdtempSync('/dev/shm/s3tgt-scale-');
  const tgt = new Tgtd(path.join(dir, 'tgt.img'));
  const ours = new TargetProcess({ dataDir: path.join(dir, 's3tgt'), logLevel: 'warn' });
  let storms: { tgt: LoginStorm; s3tgt: LoginStorm };
  try {
    await tgt.start();
    await ours.start();
    storms = { tgt: await loginStorm(tgt.port, tgt.iqn, 1, sessions), s3tgt: await loginStorm(ours.port, TEST_IQN, 0, sessions) };
  } finally {
    await ours.stop();
    await tgt.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const luns = opts.quick ? 20 : 200;
  const lunSize = '1TiB';
  const bucket = `scale-${Date.now()}`;
  await rgw.createBucket(bucket);
  const more = Array.from(
    { length: luns - 1 },
    (_, i) => `      - lun: ${i + 1}
        name: big${i + 1}
        size: ${lunSize}
        store: s3
        cache: { size: 8MiB }`,
  ).join('\n');
  const t = s3Target(rgw, { bucket, size: lunSize, cache: '{ size: 8MiB }', logLevel: 'warn', moreLunsYaml: more });
  try {
    let t0 = performance.now();
    await t.start(300_000);
    const createSeconds = (performance.now() - t0) / 1000;
    await t.stop();
    t0 = performance.now();
    await t.start(300_000);
    const openSeconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 5_000));
    const idleRssMiB = rssMiB(t.proc?.pid ?? 0);
    return { sessions, ...storms, luns, lunSize, createSeconds, openSeconds, idleRssMiB };
  } finally {
    await t.stop();
  }
}
