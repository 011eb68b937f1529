import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FaultProxy } from '../harness/fault-proxy';
import { Rgw } from '../harness/rgw';
import { listObjects, s3Target } from '../harness/s3-target';
import { type TargetProcess, TEST_IQN } from '../harness/target';
import { prefetch10, read10, SYNC_CACHE, TUR, unmap, write10, write10Fua } from '../lib/cdb';
import { TestInitiator } from '../lib/initiator';

const MiB = 1024 * 1024;
/** LBA of the first block of chunk i (512-byte blocks). */
const lbaOf = (chunk: number): number => chunk * 2048;

async function session(t: TargetProcess): Promise<TestInitiator> {
  const c = await TestInitiator.connect(t.port);
  await c.login({ target: TEST_IQN });
  await c.response(c.command(TUR));
  return c;
}

/** [sense key, ASC, ASCQ] of a CHECK CONDITION (fixed format). */
const sense = (r: { status: number; sense: Buffer }): number[] => [r.status, r.sense[2] & 0x0f, r.sense[12], r.sense[13]];
const NOT_READY_RETRY = [2, 2, 0x04, 0x01];

/**
 * Writes chunk `chunk` whole (16 x 64 KiB, byte values fill + k), makes it durable, restarts
 * the target (cold cache) and waits for the chunk listing: the chunk is stored, not cached.
 */
async function storedChunk(t: TargetProcess, chunk: number, fill: number): Promise<TestInitiator> {
  const c = await session(t);
  for (let k = 0; k < 16; k++) {
    const r = await c.response(c.command(write10(lbaOf(chunk) + k * 128, 128), { write: Buffer.alloc(64 * 1024, fill + k) }));
    assert.equal(r.status, 0);
  }
  assert.equal((await c.response(c.command(SYNC_CACHE), 20_000)).status, 0);
  c.close();
  assert.equal(await t.stop(), 0);
  await t.start();
  const d = await session(t);
  await new Promise((r) => setTimeout(r, 500));
  return d;
}

/**
 * The discarded chunk reads zeros now; a later 4 KiB write of 0x5a at 512 KiB is made durable;
 * after a graceful stop and a restart the chunk holds only that write, zeros elsewhere (the
 * discarded data did not come back with it). Clears the proxy's rules and closes `c`.
 */
async function assertZerosThenLaterWrite(t: TargetProcess, c: TestInitiator, proxy: FaultProxy, chunk: number, zeros: string): Promise<void> {
  const r = await c.response(c.command(read10(lbaOf(chunk), 128), { read: 64 * 1024 }));
  assert.equal(r.status, 0);
  assert.ok(
    r.data.every((b) => b === 0),
    zeros,
  );
  assert.equal((await c.response(c.command(write10(lbaOf(chunk) + 1024, 8), { write: Buffer.alloc(4096, 0x5a) }))).status, 0);
  assert.equal((await c.response(c.command(SYNC_CACHE), 20_000)).status, 0);
  proxy.clearRules();
  c.close();
  assert.equal(await t.stop(), 0);
  await t.start();
  const d = await session(t);
  const parts: Buffer[] = [];
  for (let k = 0; k < 4; k++) parts.push((await d.response(d.command(read10(lbaOf(chunk) + k * 512, 512), { read: 256 * 1024 }))).data);
  const expect = Buffer.alloc(MiB);
  expect.fill(0x5a, 512 * 1024, 512 * 1024 + 4096);
  assert.ok(Buffer.concat(parts).equals(expect), 'only the later 4 KiB write is there; the rest of the chunk is zeros');
  d.close();
}

/**
 * Issue 13: an S3 that hangs, stalls mid-body, loses answers or is slow to delete, seen from an
 * initiator through the fault proxy in front of a real RGW. Every one of these tests fails on
 * the commit before the storage-core split (a hang, stale data, or resurrected data).
 */
describe('S3 stalls, lost answers and slow deletes (issue 13)', () => {
  let rgw: Rgw;
  let proxy: FaultProxy;
  before(async () => {
    rgw = await Rgw.start();
    proxy = new FaultProxy(rgw.port);
    await proxy.start();
  });
  after(async () => {
    await proxy?.stop();
    await rgw?.stop();
  });

  const target = async (bucket: string, over: { cache?: string; lease?: string } = {}): Promise<TargetProcess> => {
    await rgw.createBucket(bucket);
    return s3Target(rgw, {
      bucket,
      endpoint: proxy.endpoint,
      cache: over.cache ?? '{ size: 16MiB, flushDelay: 50ms }',
      extraS3: 'retryDeadline: 3s\n  requestTimeout: 1s',
      logLevel: 'info',
      ...(over.lease ? { lease: over.lease } : {}),
    });
  };

  it('a black-holed S3 (and one that stalls mid-body): reads end in NOT READY 04/01 within retryDeadline + requestTimeout, task management completes, a graceful stop exits 1 (defect 1)', async () => {
    const t = await target('blackhole');
    await t.start();
    try {
      let c = await session(t);
      const data = Buffer.alloc(64 * 1024, 0x3c);
      assert.equal((await c.response(c.command(write10Fua(0, 128), { write: data }))).status, 0);
      c.close();
      assert.equal(await t.stop(), 0);
      await t.start(); // cold: chunk 0 is only in S3
      c = await session(t);
      proxy.rule({ action: 'black-hole', match: /\/chunks\// });
      const t0 = Date.now();
      const r = await c.response(c.command(read10(0, 8), { read: 4096 }), 20_000);
      assert.deepEqual(sense(r), NOT_READY_RETRY, 'NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY: retried by initiators');
      assert.ok(Date.now() - t0 < 3_000 + 1_000 + 2_000, `answered after ${Date.now() - t0} ms`);
      // A command stuck in S3, then ABORT TASK and LOGICAL UNIT RESET: both complete.
      const stuck = c.command(read10(8, 8), { read: 4096 });
      const abort = c.tmf(1, stuck);
      assert.equal(await c.tmfResponse(abort, 20_000), 0, 'ABORT TASK: function complete');
      const stuck2 = c.command(read10(16, 8), { read: 4096 });
      void stuck2;
      const reset = c.tmf(5);
      assert.equal(await c.tmfResponse(reset, 20_000), 0, 'LOGICAL UNIT RESET: function complete');
      // A GET whose answer stalls halfway through the body.
      proxy.clearRules();
      proxy.rule({ action: 'stall-body', match: /^GET .*\/chunks\// });
      c.close();
      c = await session(t);
      const t1 = Date.now();
      const r2 = await c.response(c.command(read10(0, 8), { read: 4096 }), 20_000);
      assert.deepEqual(sense(r2), NOT_READY_RETRY);
      assert.ok(Date.now() - t1 < 6_000, `answered after ${Date.now() - t1} ms`);
      // A graceful stop with dirty data while S3 hangs: exit 1 (the data is not in S3), in bounded time.
      proxy.clearRules();
      assert.equal((await c.response(c.command(write10(lbaOf(5), 8), { write: Buffer.alloc(4096, 9) }))).status, 0);
      proxy.rule({ action: 'black-hole', match: /./ });
      const t2 = Date.now();
      const code = await t.stop('SIGTERM', 120_000);
      assert.equal(code, 1, t.output.slice(-3000));
      assert.ok(Date.now() - t2 < 60_000, `stopped after ${Date.now() - t2} ms`);
      assert.match(t.output, /could not be flushed at shutdown/);
      c.close();
    } finally {
      proxy.clearRules();
      await t.stop('SIGKILL');
    }
  });

  it('a chunk PUT whose every answer was lost may have landed: a later UNMAP deletes it, and it does not come back after a restart (defect 7)', async () => {
    const t = await target('lost', { cache: '{ size: 16MiB, flushDelay: 1h }' });
    await t.start();
    try {
      const c = await session(t);
      await new Promise((r) => setTimeout(r, 500)); // the chunk listing is done: chunk 3 is known absent
      proxy.rule({ action: 'lose-answer', match: /^PUT .*\/chunks\/0000000000000003/ });
      const w = await c.response(c.command(write10Fua(lbaOf(3), 128), { write: Buffer.alloc(64 * 1024, 0x77) }), 20_000);
      assert.deepEqual(sense(w), NOT_READY_RETRY, 'every answer lost: the FUA write fails retryably');
      proxy.clearRules();
      proxy.rule({ action: 'error', match: /^PUT .*\/chunks\/0000000000000003/ });
      const u = unmap(lbaOf(3), 2048);
      assert.equal((await c.response(c.command(u.cdb, { write: u.data }), 20_000)).status, 0, 'UNMAP of the whole chunk');
      proxy.clearRules();
      assert.equal((await listObjects(rgw, 'lost')).has('luns/disk0/chunks/0000000000000003'), false, 'the landed object was deleted');
      c.close();
      assert.equal(await t.stop(), 0);
      await t.start();
      const d = await session(t);
      const back = await d.response(d.command(read10(lbaOf(3), 128), { read: 64 * 1024 }));
      assert.equal(back.status, 0);
      assert.ok(
        back.data.every((b) => b === 0),
        'discarded blocks read zeros after a restart',
      );
      d.close();
    } finally {
      proxy.clearRules();
      await t.stop();
    }
  });

  it('UNMAP while PRE-FETCH reads the chunk and the DELETE is slow: the blocks read zeros, and a later partial write does not bring the old data back (defect 5)', async () => {
    const t = await target('slowdelete', { cache: '{ size: 16MiB, flushDelay: 1h }' });
    await t.start();
    try {
      const c = await storedChunk(t, 4, 0xa0);
      proxy.rule({ action: 'delay-request', match: /^POST .*[?&]delete/, delayMs: 800 });
      proxy.rule({ action: 'delay-request', match: /^GET .*\/chunks\/0000000000000004/, delayMs: 100 });
      c.command(prefetch10(lbaOf(4), 2048)); // its answer (CONDITION MET) is not waited for
      const u = unmap(lbaOf(4), 2048);
      const um = await c.response(c.command(u.cdb, { write: u.data }), 20_000);
      assert.equal(um.status, 0, `UNMAP: ${sense(um)}`);
      await new Promise((r) => setTimeout(r, 300)); // the GET of PRE-FETCH is back
      await assertZerosThenLaterWrite(t, c, proxy, 4, 'UNMAPped blocks read zeros (LBPRZ=1)');
    } finally {
      proxy.clearRules();
      await t.stop();
    }
  });

  it('UNMAP of two chunks that waits for the upload of one while PRE-FETCH brings the other in: the other reads zeros and stays deleted (found in review)', async () => {
    const t = await target('unmapwait', { cache: '{ size: 16MiB, flushDelay: 100ms }' });
    await t.start();
    try {
      const c = await storedChunk(t, 5, 0xb0);
      proxy.rule({ action: 'delay-request', match: /^PUT .*\/chunks\/0000000000000006/, delayMs: 1_500 });
      proxy.rule({ action: 'delay-request', match: /^GET .*\/chunks\/0000000000000005/, delayMs: 300 });
      assert.equal((await c.response(c.command(write10(lbaOf(6), 8), { write: Buffer.alloc(4096, 0x66) }))).status, 0);
      await new Promise((r) => setTimeout(r, 300)); // the flusher is uploading chunk 6
      c.command(prefetch10(lbaOf(5), 2048)); // its GET lands while the UNMAP waits for that upload
      const u = unmap(lbaOf(5), 4096);
      const um = await c.response(c.command(u.cdb, { write: u.data }), 20_000);
      assert.equal(um.status, 0, `UNMAP: ${sense(um)}`);
      await assertZerosThenLaterWrite(t, c, proxy, 5, 'UNMAPped blocks read zeros (LBPRZ=1), not what the PRE-FETCH read');
    } finally {
      proxy.clearRules();
      await t.stop();
    }
  });

  it('a FUA write in flight when the lease cannot be renewed fails retryably (02/04/01), never as a lost lease (defect 4)', async () => {
    const t = await target('suspend', { lease: '{ ttl: 6s, renewInterval: 1s }' });
    await t.start();
    try {
      const c = await session(t);
      proxy.rule({ action: 'error', match: /lease\.json/ });
      proxy.rule({ action: 'delay-request', match: /^PUT .*\/chunks\//, delayMs: 6_000 });
      const r = await c.response(c.command(write10Fua(lbaOf(7), 8), { write: Buffer.alloc(4096, 1) }), 30_000);
      assert.deepEqual(sense(r), NOT_READY_RETRY, 'suspended, not fenced: Linux retries it');
      proxy.clearRules();
      c.close();
    } finally {
      proxy.clearRules();
      await t.stop();
    }
  });

  it('start-up retries a transient S3 failure (the bucket check), and fails with a clear message when S3 stays away (defect 11)', async () => {
    const t = await target('startup');
    proxy.rule({ action: 'reset', match: /^HEAD \/startup/, times: 3 });
    await t.start();
    assert.equal(proxy.injected.ruled >= 3, true);
    await t.stop();
    proxy.clearRules();
    proxy.rule({ action: 'reset', match: /^HEAD \/startup/ });
    await assert.rejects(t.start(), (e: Error) => /exited 1/.test(e.message) && /S3 bucket "startup".*gave up after/s.test(e.message));
    proxy.clearRules();
  });

  it('a start that fails binds its addresses before taking any lease, and releases every lease it took (defect 14)', async () => {
    const t = await target('failedstart');
    await t.start(); // creates the LUN
    await t.stop();
    const squatter = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => squatter.listen(t.metricsPort, '127.0.0.1', () => r()));
    try {
      await assert.rejects(t.start(), /exited/);
      assert.equal((await listObjects(rgw, 'failedstart')).has('luns/disk0/lease.json'), false, 'no lease left behind');
    } finally {
      await new Promise<void>((r) => squatter.close(() => r()));
    }
    // A second LUN that cannot open (its block size differs from the stored one): the first
    // LUN's lease, taken meanwhile, is released.
    const other = s3Target(rgw, {
      bucket: 'failedstart',
      endpoint: proxy.endpoint,
      logLevel: 'info',
      moreLunsYaml: `      - lun: 1
        name: disk1
        size: 64MiB
        store: s3`,
    });
    await other.start();
    await other.stop();
    const wrong = s3Target(rgw, {
      bucket: 'failedstart',
      endpoint: proxy.endpoint,
      logLevel: 'info',
      moreLunsYaml: `      - lun: 1
        name: disk1
        size: 64MiB
        blockSize: 4096
        store: s3`,
    });
    await assert.rejects(wrong.start(), /4096/);
    const left = await listObjects(rgw, 'failedstart', 'luns/');
    assert.deepEqual(
      [...left.keys()].filter((k) => k.endsWith('lease.json')),
      [],
      'no lease left behind',
    );
  });
});
