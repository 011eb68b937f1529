import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { defrag } from '../../src/storage/defrag';
import { isStorageError, StorageError } from '../../src/storage/errors';
import { IoPool } from '../../src/storage/io-pool';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore } from '../../src/storage/object-store';
import { RetryingStore } from '../../src/storage/retrying-store';
import { storeStack } from '../../src/storage/stack';
import { WriteGate } from '../../src/storage/write-gate';
import { FailingStore } from '../lib/failing-store';
import { VirtualScheduler } from '../lib/virtual-clock';
import { MiB, TEST_LAYOUT, testInfo, testOptions } from '../lib/volumes';

const layout = TEST_LAYOUT;
const INFO = testInfo(8 * MiB);
const OPTIONS = testOptions(8 * MiB);
const suspended = (e: unknown): boolean => isStorageError(e, 'unavailable') && e.code === 'STORE_ERR_SUSPENDED';

async function stored(): Promise<{ mem: MemoryObjectStore; store: FailingStore; gate: WriteGate; v: ChunkVolume }> {
  const mem = new MemoryObjectStore();
  await mem.put(layout.volumeKey, Buffer.from(JSON.stringify({ formatVersion: 1, ...INFO })));
  const store = new FailingStore(mem);
  const gate = WriteGate.unleased({ now: () => 0, after: () => ({ cancel: () => undefined }), sleep: async () => undefined }, 'vol');
  const v = new ChunkVolume(store, layout, INFO, OPTIONS, { gate });
  await v.write(0, Buffer.alloc(4 * MiB, 5), { fua: true });
  return { mem, store, gate, v };
}

describe('the write gate (issue 13, defects 3 and 4)', () => {
  it('with the gate shut, no mutation reaches the store: UNMAP, WRITE SAME, grow, defrag orphans, records, offline deletes; reads go on', async () => {
    const { mem, store, gate, v } = await stored();
    await mem.put(layout.chunkKey(40), Buffer.alloc(16)); // an orphan past the end
    gate.suspend('renewals fail');
    const before = store.log.length;
    await assert.rejects(v.discard([{ offset: 0, length: MiB }]), suspended);
    await assert.rejects(v.writeSame({ offset: MiB, length: MiB }, Buffer.alloc(512), { unmap: true }), suspended);
    await assert.rejects(v.grow(16 * MiB), suspended);
    await assert.rejects(defrag(v, store, layout, { dryRun: false }), suspended);
    await assert.rejects(v.saveRecord('mode-pages', Buffer.from('{}')), suspended);
    await assert.rejects(gate.bind(store).deleteMany([layout.volumeKey]), suspended); // what `lun delete` goes through
    await assert.rejects(gate.bind(store).copy(layout.chunkKey(0), layout.chunkKey(9)), suspended); // server-side copies (issue 16)
    const mutations = store.log.slice(before).filter((r) => r.op === 'put' || r.op === 'copy' || r.op === 'delete' || r.op === 'deleteMany');
    assert.deepEqual(mutations, [], 'nothing was sent');
    assert.ok(
      (await v.read(0, 4096)).every((b) => b === 5),
      'reads still work',
    );
    assert.equal(mem.count(layout.chunksPrefix), 5);
  });

  it('close() shuts the gate for good; a fenced volume closing reports its loss', async () => {
    const a = await stored();
    await a.v.close();
    assert.equal(a.gate.state, 'closed');
    assert.throws(() => a.gate.check('PUT'), { code: 'STORE_ERR_CLOSED' });
    const b = await stored();
    await b.v.write(6 * MiB, Buffer.alloc(4096, 1));
    b.gate.fence('the lease was taken over');
    await assert.rejects(b.v.close(), (e: unknown) => isStorageError(e, 'fenced') && /1 dirty chunks were not written/.test(e.message));
  });

  it('a close whose final flush meets a lapsed lease flushes again once the lease is renewed, and not before; fenced meanwhile, it fails', async () => {
    const { mem, gate, v } = await stored();
    await v.write(5 * MiB, Buffer.alloc(4096, 7)); // acknowledged, in the cache only
    gate.suspend('renewals fail (an S3 outage that just ended)');
    const closing = v.close();
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    assert.equal(await mem.head(layout.chunkKey(5)), null, 'nothing written while the lease is lapsed');
    gate.extend(1_000); // a renewal landed
    await closing;
    assert.equal((await mem.get(layout.chunkKey(5)))?.body.readUInt8(0), 7, 'the dirty chunk is in the store');
    assert.equal(gate.state, 'closed');

    const other = await stored();
    await other.v.write(5 * MiB, Buffer.alloc(4096, 8));
    other.gate.suspend('renewals fail');
    const failing = other.v.close();
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    other.gate.fence('another server took the lease');
    await assert.rejects(failing, suspended);
    assert.equal(await other.mem.head(layout.chunkKey(5)), null);
  });

  it('a FUA write in flight when the gate suspends fails retryably (02/04/01), not as fenced (02/04/03), through the whole stack (defect 4)', async () => {
    const mem = new MemoryObjectStore();
    const failing = new FailingStore(mem).add({ fault: 'delay', ops: ['put'], delayMs: 300 });
    const { store } = storeStack(failing, { concurrency: 8, requestTimeoutMs: 5_000, retryDeadlineMs: 10_000 });
    const gate = WriteGate.unleased({ now: () => 0, after: () => ({ cancel: () => undefined }), sleep: async () => undefined }, 'vol');
    const v = new ChunkVolume(store, layout, INFO, OPTIONS, { gate });
    const w = v.write(0, Buffer.alloc(4096, 1), { fua: true });
    await new Promise((r) => setTimeout(r, 50));
    gate.suspend('renewals fail');
    await assert.rejects(w, suspended);
    assert.equal(mem.count(layout.chunksPrefix), 0, 'the aborted PUT did not land');
  });

  it('the store stack refuses a mutation that carries no gate', async () => {
    const { store } = storeStack(new MemoryObjectStore(), { concurrency: 4, requestTimeoutMs: 1_000, retryDeadlineMs: 1_000 });
    await assert.rejects(store.put('p/vol/chunks/0', Buffer.alloc(1)), { code: 'STORE_ERR_INTERNAL' });
    await assert.rejects(store.deleteMany(['p/vol/chunks/0']), { code: 'STORE_ERR_INTERNAL' });
    await assert.rejects(store.copy('p/vol/chunks/0', 'p/vol/chunks/1'), { code: 'STORE_ERR_INTERNAL' });
  });
});

describe('bounded store requests (issue 13, defect 1)', () => {
  it('a store that never answers: a read ends retryably within retryDeadline + requestTimeout', async () => {
    const sched = new VirtualScheduler();
    const clock = sched.clock();
    const mem = new MemoryObjectStore();
    const seed = new ChunkVolume(mem, layout, INFO, OPTIONS);
    await seed.write(MiB, Buffer.alloc(MiB, 1), { fua: true });
    await seed.close();
    const hole = new FailingStore(mem, { clock }).add({ fault: 'black-hole' });
    const { store } = storeStack(hole, { concurrency: 8, requestTimeoutMs: 2_000, retryDeadlineMs: 4_000, clock, random: () => 0.5 });
    const v = new ChunkVolume(store, layout, INFO, OPTIONS, { clock });
    const r = await sched.settle(v.read(MiB, 4096), 60_000);
    assert.ok(r !== 'pending', 'the read ended');
    assert.ok(!r.ok && isStorageError(r.error, 'unavailable'), 'retryably');
    assert.ok(sched.now <= 4_000 + 2_000 + 100, `after ${sched.now} ms`);
  });

  it('waiting for a pool slot is bounded by the deadline, and by the caller signal', async () => {
    const sched = new VirtualScheduler();
    const clock = sched.clock();
    const pool = new IoPool({ concurrency: 3, flushShare: 0.6, backgroundShare: 0.2, maxWaitMs: 10_000 }, clock);
    const never = (): Promise<void> => new Promise(() => undefined);
    for (let i = 0; i < 3; i++) void pool.run('foreground', never);
    const waited = await sched.settle(
      pool.run('foreground', async () => 1, { deadline: 1_000 }),
      5_000,
    );
    assert.ok(waited !== 'pending' && !waited.ok && isStorageError(waited.error) && waited.error.code === 'STORE_ERR_POOL_TIMEOUT');
    assert.equal(sched.now, 1_000);
    const ctl = new AbortController();
    const cancelled = pool.run('foreground', async () => 1, { signal: ctl.signal });
    ctl.abort(new StorageError('unavailable', 'gate shut', { code: 'STORE_ERR_SUSPENDED' }));
    await assert.rejects(cancelled, suspended);
    assert.equal(pool.stats().queued.foreground, 0);
    assert.equal(
      (await sched.settle(
        pool.run('control', async () => 'lease'),
        10,
      )) !== 'pending',
      true,
      'the control lane never waits',
    );
  });

  it('the retry layer rethrows the reason of the signal that ended it, unchanged', async () => {
    const flaky: ObjectStore = Object.assign(new MemoryObjectStore(), {
      put: async () => {
        throw new StorageError('unavailable', '503');
      },
    });
    const ctl = new AbortController();
    const reason = new StorageError('fenced', 'lease lost: taken over');
    const retrying = new RetryingStore(flaky, { deadlineMs: 10_000, baseDelayMs: 20, maxDelayMs: 20 });
    const p = retrying.put('k', Buffer.alloc(1), { signal: ctl.signal });
    setTimeout(() => ctl.abort(reason), 30);
    await assert.rejects(p, (e: unknown) => e === reason);
  });
});
