import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mustRun } from '../test/harness/exec';
import type { Rgw } from '../test/harness/rgw';
import { listObjects, s3Target } from '../test/harness/s3-target';
import { TEST_IQN } from '../test/harness/target';
import { withCpu } from './lib/cpu';
import { randomIo } from './lib/pipeline';
import { qemuBench } from './lib/qemu';

export interface CodecRow {
  readonly variant: string;
  readonly writeMiBs: number;
  readonly writeCpuPerGiB: number;
  readonly readMiBs: number;
  readonly readCpuPerGiB: number;
  readonly randomReadIops: number;
  readonly storedMiB: number;
}

/** What each LUN variant adds to its configuration (docs/data-at-rest.md). */
const VARIANTS: ReadonlyArray<[string, string]> = [
  ['plain', ''],
  ['lz4', '        compression: lz4'],
  ['zstd', '        compression: zstd'],
  ['AES-256-GCM', `        encryption: { keyId: bench, key: "${'3c'.repeat(32)}" }`],
  ['zstd + AES-256-GCM', `        compression: zstd\n        encryption: { keyId: bench, key: "${'3c'.repeat(32)}" }`],
];

/**
 * Issue 19's rows: what compression and encryption cost on the S3 path, each variant against the
 * plain LUN in one run on the same RGW. The data is half random, half text (a disk holds
 * both): `mib` MiB written sequentially by qemu-img convert (16 requests in flight, until its
 * flush returns), read back cold by qemu-img bench (1 MiB, QD16), then 4 KiB random reads at
 * QD32 from a cold 64 MiB cache; the bytes the bucket holds after it; s3tgt's CPU per GiB.
 */
export async function dataAtRestBench(rgw: Rgw, opts: { mib: number; randomReads: number }): Promise<CodecRow[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-codec-bench-'));
  const image = path.join(dir, 'mixed.img');
  const fd = openSync(image, 'w');
  const words = Buffer.from('a block device on objects keeps each chunk as one key, and a hole as no key at all; '.repeat(12_500));
  for (let i = 0; i < opts.mib; i++) writeSync(fd, i % 2 === 0 ? randomBytes(1048576) : words.subarray(0, 1048576));
  closeSync(fd);
  const rows: CodecRow[] = [];
  try {
    for (const [variant, yaml] of VARIANTS) {
      const bucket = `codec-${variant.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}-${Date.now()}`;
      await rgw.createBucket(bucket);
      const target = s3Target(rgw, {
        bucket,
        size: `${opts.mib}MiB`,
        cache: '{ size: 64MiB, flushDelay: 200ms }',
        lease: '{ ttl: 20s, renewInterval: 3s }',
        logLevel: 'warn',
        lun0Yaml: yaml,
      });
      await target.start();
      try {
        const pid = (): number => target.proc?.pid ?? 0;
        const t0 = process.hrtime.bigint();
        const w = await withCpu(pid(), () =>
          mustRun('qemu-img', ['convert', '-t', 'writeback', '-W', '-m', '16', '-n', '-f', 'raw', '-O', 'raw', image, target.url(0)], {
            timeoutMs: 600_000,
          }),
        );
        const writeS = Number(process.hrtime.bigint() - t0) / 1e9;
        await target.stop();
        await target.start();
        const r = await withCpu(pid(), () => qemuBench(target.url(0), ['-t', 'writeback', '-s', '1M', '-d', '16', '-c', String(opts.mib)]));
        await target.stop();
        await target.start();
        const iops = await randomIo(target.port, TEST_IQN, { kind: 'read', count: opts.randomReads, qd: 32, spanBytes: opts.mib * 1048576 });
        let stored = 0;
        for (const size of (await listObjects(rgw, bucket, 'luns/disk0/chunks/')).values()) stored += size;
        const gib = opts.mib / 1024;
        rows.push({
          variant,
          writeMiBs: opts.mib / writeS,
          writeCpuPerGiB: w.cpu / gib,
          readMiBs: opts.mib / r.value,
          readCpuPerGiB: r.cpu / gib,
          randomReadIops: iops,
          storedMiB: stored / 1048576,
        });
      } finally {
        await target.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
