import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeNopOut } from '../../src/iscsi/pdu';
import { mustRun, run } from '../harness/exec';
import { FaultProxy } from '../harness/fault-proxy';
import { Rgw } from '../harness/rgw';
import { s3Target } from '../harness/s3-target';
import type { TargetProcess } from '../harness/target';
import { TEST_IQN } from '../harness/target';
import { TestInitiator } from '../lib/initiator';

const MiB = 1024 * 1024;

describe('S3 failures: retries, outages, no data loss (issue 4 acceptance)', () => {
  let rgw: Rgw;
  let proxy: FaultProxy;
  let target: TargetProcess;
  before(async () => {
    rgw = await Rgw.start();
    await rgw.createBucket('faults');
    proxy = new FaultProxy(rgw.port);
    await proxy.start();
    target = s3Target(rgw, {
      bucket: 'faults',
      endpoint: proxy.endpoint,
      cache: '{ size: 16MiB, flushDelay: 50ms }',
      extraS3: 'retryDeadline: 4s\n  requestTimeout: 2s',
    });
    await target.start();
  });
  after(async () => {
    await target?.stop();
    await proxy?.stop();
    await rgw?.stop();
  });

  it('with 10 % of requests failing (503, resets, cut bodies) and 20 ms latency, a 64 MiB write/read/verify cycle passes', async () => {
    proxy.set({ latencyMs: 20, errorRate: 0.05, resetRate: 0.03, cutRate: 0.02 });
    const image = path.join(target.dir, 'random.img');
    writeFileSync(image, randomBytes(64 * MiB));
    await mustRun('qemu-img', ['convert', '-t', 'writeback', '-n', '-f', 'raw', '-O', 'raw', image, target.url(0)], { timeoutMs: 300_000 });
    // Cold read through the faults: restart so every byte comes from S3.
    assert.equal(await target.stop(), 0);
    await target.start();
    const back = path.join(target.dir, 'back.img');
    await mustRun('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', 'count=64', `if=${target.url(0)}`, `of=${back}`], { timeoutMs: 300_000 });
    assert.ok(readFileSync(back).equals(readFileSync(image)));
    const injected = proxy.injected.errors + proxy.injected.resets + proxy.injected.cuts;
    // ~140 requests at 10 %: fewer than 3 faults has a probability below 1e-4.
    assert.ok(injected >= 3, `faults were injected (${JSON.stringify(proxy.injected)})`);
    proxy.set({ latencyMs: 0, errorRate: 0, resetRate: 0, cutRate: 0 });
  });

  it('while S3 is unreachable the target answers NOP-Outs and TEST UNIT READY; I/O that needs S3 fails retryably (NOT READY 04/01); then it recovers without loss', async () => {
    // Cold cache: chunk 0 exists in S3 (first test) but is not cached.
    assert.equal(await target.stop(), 0);
    await target.start();
    const c = await TestInitiator.connect(target.port);
    await c.login({ target: TEST_IQN });
    await c.response(c.command(Buffer.from([0, 0, 0, 0, 0, 0])));
    // Data written and acknowledged before the outage, still in the write-back cache.
    const w = Buffer.alloc(4096, 0x5c);
    const wcdb = Buffer.from([0x2a, 0, 0, 0, 0x40, 0x00, 0, 0, 8, 0]); // WRITE(10) LBA 0x4000, 8 blocks
    assert.equal((await c.response(c.command(wcdb, { write: w }))).status, 0);
    proxy.set({ outage: true });
    const tur = await c.response(c.command(Buffer.from([0, 0, 0, 0, 0, 0])));
    assert.equal(tur.status, 0, 'TEST UNIT READY needs no S3');
    c.send(
      encodeNopOut({ immediate: true, lun: 0n, itt: 0x4e4f50, ttt: 0xffffffff, cmdSN: c.cmdSN, expStatSN: c.expStatSN, data: Buffer.from('ping') }),
    );
    const pong = await c.recv();
    assert.ok(typeof pong !== 'string' && pong.kind === 'nop-in' && pong.itt === 0x4e4f50, 'NOP-Out answered during the outage');
    // READ(10) of LBA 0: stored in S3, not cached.
    const rcdb = Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]);
    const t0 = Date.now();
    const r = await c.response(c.command(rcdb, { read: 4096 }), 30_000);
    assert.equal(r.status, 2);
    assert.equal(r.sense[2] & 0x0f, 0x02, 'NOT READY');
    assert.deepEqual([r.sense[12], r.sense[13]], [0x04, 0x01], 'LOGICAL UNIT IS IN PROCESS OF BECOMING READY: initiators retry');
    assert.ok(Date.now() - t0 < 15_000, 'within the retry deadline, below initiator timeouts');
    const inq = await run('iscsi-inq', [target.url(0)]);
    assert.equal(inq.code, 0, 'logins and INQUIRY still work');
    proxy.set({ outage: false });
    const again = await c.response(c.command(rcdb, { read: 4096 }), 30_000);
    assert.equal(again.status, 0);
    const mine = await c.response(c.command(Buffer.from([0x28, 0, 0, 0, 0x40, 0x00, 0, 0, 8, 0]), { read: 4096 }));
    assert.ok(mine.data.equals(w), 'the write acknowledged before the outage is intact');
    c.close();
    // And it reaches S3 once S3 is back.
    assert.equal(await target.stop(), 0, `a graceful stop flushes after the outage:\n${target.output.slice(-4000)}`);
    await target.start();
    const d = await TestInitiator.connect(target.port);
    await d.login({ target: TEST_IQN });
    await d.response(d.command(Buffer.from([0, 0, 0, 0, 0, 0])));
    assert.ok((await d.response(d.command(Buffer.from([0x28, 0, 0, 0, 0x40, 0x00, 0, 0, 8, 0]), { read: 4096 }))).data.equals(w));
    d.close();
  });

  it('a lease that lapses during the final flush (S3 back just before a stop) is renewed and the flush finishes', async () => {
    // Seen in CI: SIGTERM came as an outage ended, the lease was still valid when the stop
    // began and lapsed while the last upload ran; the stop then gave up on the dirty chunk.
    const c = await TestInitiator.connect(target.port);
    await c.login({ target: TEST_IQN });
    await c.response(c.command(Buffer.from([0, 0, 0, 0, 0, 0])));
    // Renewals fail from now on; the write's upload is held at the proxy past the lease's validity.
    proxy.rule({ action: 'error', match: /^PUT \/faults\/luns\/disk0\/lease\.json/ });
    proxy.rule({ action: 'delay-request', match: /^PUT \/faults\/luns\/disk0\/chunks\//, delayMs: 8000 });
    const w = Buffer.alloc(4096, 0x6d);
    const wcdb = Buffer.from([0x2a, 0, 0, 0, 0x60, 0x00, 0, 0, 8, 0]); // WRITE(10) LBA 0x6000, 8 blocks
    assert.equal((await c.response(c.command(wcdb, { write: w }))).status, 0);
    c.close();
    await new Promise((r) => setTimeout(r, 300));
    const stopping = target.stop();
    for (let i = 0; i < 100 && !target.output.includes('store writes suspended'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(target.output.includes('store writes suspended'), 'the lease lapsed during the stop');
    proxy.clearRules(); // S3 answers again
    assert.equal(await stopping, 0, `the stop renews the lease and finishes the flush:\n${target.output.slice(-4000)}`);
    await target.start();
    const d = await TestInitiator.connect(target.port);
    await d.login({ target: TEST_IQN });
    await d.response(d.command(Buffer.from([0, 0, 0, 0, 0, 0])));
    assert.ok((await d.response(d.command(Buffer.from([0x28, 0, 0, 0, 0x60, 0x00, 0, 0, 8, 0]), { read: 4096 }))).data.equals(w));
    d.close();
  });
});
