import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before } from 'node:test';
import { FileObjectStore } from '../../src/storage/file-store';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore } from '../../src/storage/object-store';
import { Rgw } from '../harness/rgw';
import { storeConformance } from './conformance';

storeConformance('memory', async () => new MemoryObjectStore());
const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-store-'));
storeConformance('local directory', async () => new FileObjectStore(dir));

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
