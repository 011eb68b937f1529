import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { listAll } from '../src/storage/object-store';
import { run } from '../test/harness/exec';
import { FaultProxy } from '../test/harness/fault-proxy';
import type { Rgw } from '../test/harness/rgw';
import { s3Target } from '../test/harness/s3-target';
import { TEST_IQN } from '../test/harness/target';
import { SYNC_CACHE, TUR } from '../test/lib/cdb';
import { extendedCopy, inquiry, naaDesignator } from '../test/personality/cdbs';
import { Peer } from '../test/personality/peer';
import { esxi } from '../test/personality/profiles';
import { rawCopy } from './lib/raw-s3';

export interface CopyBenchRow {
  readonly latencyMs: number;
  readonly mib: number;
  /** The host copies: qemu-img convert reads LUN 0 and writes LUN 1 (ending with SYNCHRONIZE CACHE). */
  readonly hostSeconds: number;
  readonly hostS3Bytes: number;
  /** EXTENDED COPY of the same range from LUN 0 to LUN 2, as ESXi sends it. */
  readonly xcopySeconds: number;
  readonly xcopyS3Bytes: number;
  /** The same number of 1 MiB CopyObject requests with the SDK alone, 8 in flight (s3tgt's parallelism per piece). */
  readonly rawCopySeconds: number;
}

const MiB = 1024 * 1024;
const LUN = (n: number): bigint => BigInt(n) << 48n;
/** 16 MiB per segment descriptor, 16 per command: 256 MiB per EXTENDED COPY. */
const SEGMENT_BLOCKS = (16 * MiB) / 512;

/**
 * A LUN-to-LUN copy of `mib` MiB on one RGW bucket, two ways in one run: the host reads and
 * writes (qemu-img convert between two LUNs of the target, cache=none so it ends with
 * SYNCHRONIZE CACHE: the copy is in S3), and EXTENDED COPY (VMware's full copy), which
 * s3tgt turns into one S3 CopyObject per chunk. Both start with the source in S3 and a cold
 * destination; the S3 body bytes each moved come from s3tgt's store counters. The reference for
 * the copy itself is the SDK alone sending as many CopyObject requests.
 */
export async function copyBench(rgw: Rgw, opts: { mib: number; latencyMs: number }): Promise<CopyBenchRow> {
  const bucket = `cbench-${opts.latencyMs}ms-${Date.now()}`;
  await rgw.createBucket(bucket);
  const proxy = opts.latencyMs > 0 ? new FaultProxy(rgw.port) : undefined;
  await proxy?.start();
  proxy?.set({ latencyMs: opts.latencyMs });
  const size = `${opts.mib}MiB`;
  const lun = (n: number): string => `      - lun: ${n}
        name: disk${n}
        size: ${size}
        store: s3
        cache: { size: 64MiB, flushDelay: 200ms }`;
  const target = s3Target(rgw, {
    bucket,
    endpoint: proxy?.endpoint ?? rgw.endpoint,
    size,
    extraS3: 'concurrency: 16',
    cache: '{ size: 64MiB, flushDelay: 200ms }',
    moreLunsYaml: `${lun(1)}\n${lun(2)}`,
    lease: '{ ttl: 20s, renewInterval: 3s }',
    logLevel: 'warn',
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-cbench-'));
  await target.start();
  const peer = await Peer.connect(target.port, esxi('cbench'));
  try {
    if ((await peer.login(TEST_IQN)) !== 0) throw new Error('login refused');
    const image = path.join(dir, 'src.img');
    const fd = openSync(image, 'w');
    for (let i = 0; i < opts.mib / 64; i++) writeSync(fd, randomBytes(64 * MiB));
    closeSync(fd);
    await qemuImg(['convert', '-n', '-f', 'raw', '-O', 'raw', image, target.url(0)]);
    for (const n of [0, 1, 2]) await peer.execRetryUa(TUR, { lun: LUN(n) });
    if ((await peer.exec(SYNC_CACHE, {}, 300_000)).status !== 0) throw new Error('SYNCHRONIZE CACHE failed');
    const bytes = async (): Promise<number> => {
      const v = async (name: string): Promise<number> => (await target.metric(`${name}{backend="s3"}`)) || 0;
      return (await v('s3tgt_store_received_bytes_total')) + (await v('s3tgt_store_sent_bytes_total'));
    };
    let b0 = await bytes();
    let t0 = performance.now();
    await qemuImg(['convert', '-n', '-t', 'none', '-f', 'raw', '-O', 'raw', target.url(0), target.url(1)]);
    const hostSeconds = (performance.now() - t0) / 1000;
    const hostS3Bytes = (await bytes()) - b0;

    const naa: Buffer[] = [];
    for (const n of [0, 2]) naa.push(naaDesignator((await peer.exec(inquiry(255, 0x83), { read: 255, lun: LUN(n) })).data));
    b0 = await bytes();
    t0 = performance.now();
    const perCommand = 16 * SEGMENT_BLOCKS * 512;
    for (let at = 0; at < opts.mib * MiB; at += perCommand) {
      const segments = [];
      for (let k = at; k < Math.min(at + perCommand, opts.mib * MiB); k += SEGMENT_BLOCKS * 512) {
        segments.push({ src: 0, dst: 1, blocks: SEGMENT_BLOCKS, srcLba: k / 512, dstLba: k / 512 });
      }
      const x = extendedCopy(naa, segments);
      const o = await peer.exec(x.cdb, { write: x.data, lun: LUN(2) }, 300_000);
      if (o.status !== 0) throw new Error(`EXTENDED COPY failed with status ${o.status}`);
    }
    const xcopySeconds = (performance.now() - t0) / 1000;
    const xcopyS3Bytes = (await bytes()) - b0;
    const endpoint = proxy?.endpoint ?? rgw.endpoint;
    const rawMiBs = await rawCopy(
      { endpoint, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, bucket },
      { objects: opts.mib, size: MiB, concurrency: 8 },
    );
    return { latencyMs: opts.latencyMs, mib: opts.mib, hostSeconds, hostS3Bytes, xcopySeconds, xcopyS3Bytes, rawCopySeconds: opts.mib / rawMiBs };
  } finally {
    peer.close();
    await target.stop();
    await proxy?.stop();
    rmSync(dir, { recursive: true, force: true });
    await emptyBucket(rgw, bucket);
  }
}

/** RGW's memstore OSD holds everything in RAM (8 GiB): each row leaves nothing behind. */
async function emptyBucket(rgw: Rgw, bucket: string): Promise<void> {
  const store = rgw.store(bucket);
  try {
    const keys: string[] = [];
    for await (const e of listAll(store, '')) keys.push(e.key);
    for (let at = 0; at < keys.length; at += 1000) await store.deleteMany(keys.slice(at, at + 1000));
  } finally {
    await store.close();
  }
}

async function qemuImg(args: readonly string[]): Promise<void> {
  const r = await run('qemu-img', args, { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`qemu-img ${args.join(' ')}: ${r.stderr}`);
}
