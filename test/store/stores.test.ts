import { after, before } from 'node:test';
import { FileObjectStore } from '../../src/storage/file-store';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore } from '../../src/storage/object-store';
import { storeStack } from '../../src/storage/stack';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';
import { Rgw } from '../harness/rgw';
import { FailingStore } from '../lib/failing-store';
import { tempDir } from '../lib/temp-dir';
import { storeConformance } from './conformance';

/** A backend as the server uses it: the decorated stack, seen through a (lease-less) write gate. */
const decorated = (raw: ObjectStore): ObjectStore =>
  WriteGate.unleased(systemClock, 'conformance').bind(storeStack(raw, { concurrency: 16, requestTimeoutMs: 10_000, retryDeadlineMs: 15_000 }).store);

storeConformance('memory', async () => new MemoryObjectStore());
const dir = tempDir('s3tgt-store-');
storeConformance('local directory', async () => new FileObjectStore(dir));
// Transient failures (503s, cut uploads) below the stack: the retry layer hides them.
storeConformance('memory through the decorated stack, with 30 % transient failures', async () =>
  decorated(
    new FailingStore(new MemoryObjectStore()).add({ fault: 'error', probability: 0.2 }).add({ fault: 'cut', ops: ['put'], probability: 0.1 }),
  ),
);

let rgw: Rgw | undefined;
let s3: ObjectStore | undefined;
before(async () => {
  rgw = await Rgw.start();
  await rgw.createBucket('conformance');
  s3 = rgw.store('conformance');
});
after(async () => {
  await s3?.close();
  await rgw?.stop();
});
storeConformance('S3 (Ceph RADOS Gateway)', async () => {
  if (!s3) throw new Error('RGW did not start');
  return s3;
});
storeConformance('S3 (Ceph RADOS Gateway) through the decorated stack', async () => {
  if (!s3) throw new Error('RGW did not start');
  return decorated(s3);
});
