import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { qemuIo } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { s3Target } from '../harness/s3-target';
import type { TargetProcess } from '../harness/target';

const MiB = 1024 * 1024;

/**
 * Durability: a write acknowledged by SYNCHRONIZE CACHE (or written with FUA) is in S3, so a
 * kill -9 right after it loses nothing.
 */
describe('kill -9 after SYNCHRONIZE CACHE loses no flushed byte (issue 4 acceptance)', () => {
  let rgw: Rgw;
  let target: TargetProcess;
  before(async () => {
    rgw = await Rgw.start();
    await rgw.createBucket('crash');
    // A long flush delay: nothing reaches S3 unless SYNCHRONIZE CACHE or FUA makes it.
    target = s3Target(rgw, { bucket: 'crash', cache: '{ size: 64MiB, flushDelay: 1h }' });
    await target.start();
  });
  after(async () => {
    await target?.stop();
    await rgw?.stop();
  });

  for (let round = 0; round < 3; round++) {
    it(`round ${round}: patterned writes at scattered offsets, flush, SIGKILL, restart, verify`, async () => {
      const writes: string[] = [];
      const reads: string[] = [];
      for (let i = 0; i < 24; i++) {
        const off = ((i * 37 + round * 11) % 200) * MiB + ((i * 4096 * 7) % MiB);
        const p = 1 + ((i + round * 50) % 250);
        writes.push(`aio_write -P ${p} ${off} 12k`);
        reads.push(`read -P ${p} ${off} 12k`);
      }
      const w = await qemuIo(target.url(0), [...writes, 'aio_flush', 'flush']);
      assert.equal(w.code, 0, w.stderr);
      assert.equal(await target.stop('SIGKILL'), null, 'killed');
      await target.start();
      const r = await qemuIo(target.url(0), reads);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /Pattern verification failed/);
      assert.equal((r.stdout.match(/read 12288\/12288/g) ?? []).length, 24);
    });
  }

  it('a write with FUA is durable without any flush', async () => {
    const w = await qemuIo(target.url(0), ['write -f -P 0x77 300M 64k']);
    assert.equal(w.code, 0, w.stderr);
    await target.stop('SIGKILL');
    await target.start();
    const r = await qemuIo(target.url(0), ['read -P 0x77 300M 64k']);
    assert.doesNotMatch(r.stdout, /Pattern verification failed/);
    assert.match(r.stdout, /read 65536\/65536/);
  });
});
