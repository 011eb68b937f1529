import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { isStorageError } from '../../src/storage/errors';
import { mustRun } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { s3Target } from '../harness/s3-target';
import type { TargetProcess } from '../harness/target';

const MiB = 1024 * 1024;
const CHUNK0 = 'luns/disk0/chunks/0000000000000000';

/**
 * s3.serverSideEncryption passed through to RGW (Ceph Pacific: SSE-C, and SSE-KMS with its
 * "testing" key backend, test/rgw/rgw.sh; Pacific has no SSE-S3, which is therefore not
 * verified here). Each mode: a qemu-img round trip through s3tgt, then the object as the
 * server keeps it.
 */
describe('server-side encryption passed through to RGW (issue 19)', () => {
  let rgw: Rgw;
  const targets: TargetProcess[] = [];
  const image = randomBytes(8 * MiB);
  before(async () => {
    rgw = await Rgw.start();
  });
  after(async () => {
    for (const t of targets) await t.stop();
    await rgw?.stop();
  });

  async function roundTrip(bucket: string, sse: string): Promise<TargetProcess> {
    await rgw.createBucket(bucket);
    const t = s3Target(rgw, { bucket, size: '64MiB', extraS3: `serverSideEncryption: ${sse}`, lease: '{ ttl: 20s, renewInterval: 3s }' });
    targets.push(t);
    await t.start();
    const file = path.join(t.dir, 'in.img');
    writeFileSync(file, image);
    await mustRun('qemu-img', ['convert', '-t', 'writeback', '-n', '-f', 'raw', '-O', 'raw', file, t.url(0)]);
    // Cold: the data comes back from RGW, decrypted by it.
    assert.equal(await t.stop(), 0);
    await t.start();
    const back = path.join(t.dir, 'back.img');
    await mustRun('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', 'count=8', `if=${t.url(0)}`, `of=${back}`]);
    assert.ok(readFileSync(back).equals(image), 'round trip');
    return t;
  }

  it('SSE-C: every object needs the key; without it RGW refuses to read the chunk', async () => {
    const key = randomBytes(32);
    await roundTrip('sse-c', `{ type: SSE-C, key: "${key.toString('hex')}" }`);
    const bare = rgw.store('sse-c');
    const keyed = rgw.store('sse-c', { sse: { type: 'SSE-C', key } });
    const wrong = rgw.store('sse-c', { sse: { type: 'SSE-C', key: randomBytes(32) } });
    try {
      await assert.rejects(bare.get(CHUNK0), (e: unknown) => isStorageError(e), 'no key: refused');
      await assert.rejects(wrong.get(CHUNK0), (e: unknown) => isStorageError(e), 'another key: refused');
      const got = await keyed.get(CHUNK0);
      assert.ok(got?.body.equals(image.subarray(0, MiB)));
    } finally {
      await Promise.all([bare.close(), keyed.close(), wrong.close()]);
    }
  });

  it('SSE-KMS: the chunk objects are stored under the KMS key', async () => {
    await roundTrip('sse-kms', '{ type: SSE-KMS, kmsKeyId: testkey-1 }');
    const client = rgw.client();
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: 'sse-kms', Key: CHUNK0 }));
      assert.equal(head.ServerSideEncryption, 'aws:kms');
      assert.equal(head.SSEKMSKeyId, 'testkey-1');
    } finally {
      client.destroy();
    }
  });
});
