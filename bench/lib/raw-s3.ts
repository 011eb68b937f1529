import { S3ObjectStore } from '../../src/storage/s3-store';
import { Rng } from '../../test/fuzz/rng';

type Conn = { endpoint: string; accessKeyId: string; secretAccessKey: string; bucket: string };

/** The SDK with the client settings s3tgt uses (keep-alive, checksums only when required, Buffer bodies). */
function sdkStore(conn: Conn, concurrency: number, contentMd5: boolean): S3ObjectStore {
  return new S3ObjectStore({
    endpoint: conn.endpoint,
    region: 'us-east-1',
    bucket: conn.bucket,
    pathStyle: true,
    maxSockets: concurrency,
    contentMd5,
    credentials: { accessKeyId: conn.accessKeyId, secretAccessKey: conn.secretAccessKey },
  });
}

export interface RawResult {
  readonly putMiBs: number;
  readonly getMiBs: number;
  /** Ranged GETs of 4 KiB at random offsets of the objects, `concurrency` in flight. */
  readonly randomGetIops: number;
}

/**
 * The baseline: the AWS SDK alone, PUT then GET of `objects` objects of `size` bytes with
 * `concurrency` requests in flight, against the same server and with the same client settings
 * s3tgt uses (keep-alive, checksums only when required, Buffer bodies).
 */
export async function rawPutGet(
  conn: { endpoint: string; accessKeyId: string; secretAccessKey: string; bucket: string },
  opts: { objects: number; size: number; concurrency: number; contentMd5: boolean; randomGets?: number },
): Promise<RawResult> {
  const s3 = sdkStore(conn, opts.concurrency, opts.contentMd5);
  const body = Buffer.alloc(opts.size, 0xa5);
  const key = (i: number): string => `raw-baseline/${i.toString(16).padStart(16, '0')}`;
  /** `count` calls of `fn`, `inFlight` at a time; returns the seconds taken. */
  const timed = async (count: number, inFlight: number, fn: (i: number) => Promise<unknown>): Promise<number> => {
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < count) await fn(next++);
      }),
    );
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const phase = async (fn: (i: number) => Promise<unknown>): Promise<number> =>
    (opts.objects * opts.size) / 1048576 / (await timed(opts.objects, opts.concurrency, fn));
  const putMiBs = await phase((i) => s3.put(key(i), body));
  const getMiBs = await phase(async (i) => {
    const r = await s3.get(key(i));
    if (r?.body.length !== opts.size) throw new Error('short read');
  });
  const rng = new Rng(12345);
  const gets = opts.randomGets ?? 0;
  const randomS = await timed(gets, 32, async () => {
    const r = await s3.get(key(rng.int(opts.objects)), { offset: rng.int(opts.size / 4096) * 4096, length: 4096 });
    if (r?.body.length !== 4096) throw new Error('short ranged read');
  });
  const randomGetIops = gets > 0 ? gets / randomS : 0;
  await s3.deleteMany(Array.from({ length: opts.objects }, (_, i) => key(i)));
  await s3.close();
  return { putMiBs, getMiBs, randomGetIops };
}

/**
 * The ceiling for server-side copies: `objects` PUTs of `size` bytes (not timed), then as many
 * CopyObject requests with `concurrency` in flight, timed; returns MiB/s copied.
 */
export async function rawCopy(
  conn: { endpoint: string; accessKeyId: string; secretAccessKey: string; bucket: string },
  opts: { objects: number; size: number; concurrency: number },
): Promise<number> {
  const s3 = sdkStore(conn, opts.concurrency, false);
  const body = Buffer.alloc(opts.size, 0x5a);
  const key = (side: string, i: number): string => `raw-copy/${side}/${i.toString(16).padStart(16, '0')}`;
  const each = async (fn: (i: number) => Promise<unknown>): Promise<number> => {
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (next < opts.objects) await fn(next++);
      }),
    );
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  await each((i) => s3.put(key('a', i), body));
  const seconds = await each(async (i) => {
    if (!(await s3.copy(key('a', i), key('b', i)))) throw new Error('copy source vanished');
  });
  const keys = Array.from({ length: opts.objects }, (_, i) => [key('a', i), key('b', i)]).flat();
  for (let at = 0; at < keys.length; at += 1000) await s3.deleteMany(keys.slice(at, at + 1000));
  await s3.close();
  return (opts.objects * opts.size) / 1048576 / seconds;
}
