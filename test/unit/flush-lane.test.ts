import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { IoPool } from '../../src/storage/io-pool';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore } from '../../src/storage/object-store';
import { PooledStore } from '../../src/storage/pooled-store';
import { lunDataStore } from '../../src/storage/snapshots/preserving-store';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';
import { FailingStore } from '../lib/failing-store';
import { MiB, testInfo, testOptions } from '../lib/volumes';

const SIZE = 256 * MiB;

async function open(store: ObjectStore): Promise<ChunkVolume> {
  const layout = new LunLayout('p', 'qos');
  const data = await lunDataStore(store, layout, null);
  // A cache four times the dirty data: the Flusher leaves it alone (flushDelay 60 s).
  return new ChunkVolume(data, layout, { ...testInfo(SIZE), name: 'qos' }, testOptions(128 * MiB), { gate: WriteGate.unleased(systemClock, 'qos') });
}

describe('read QoS while a SYNCHRONIZE CACHE drains the cache (issue 18)', () => {
  it('a read miss is not queued behind the uploads of a whole-cache flush: it finishes while the flush still runs', async () => {
    const failing = new FailingStore(new MemoryObjectStore());
    // Four S3 slots, as the I/O pool shares them: flushes may take some, a read always finds one.
    const pool = new IoPool({ concurrency: 4, flushShare: 0.6, backgroundShare: 0.2, maxWaitMs: 30_000 }, systemClock);
    const store = new PooledStore(failing, pool);
    // Chunk 200 in the store, not in the cache of the volume that reads it.
    const writer = await open(store);
    await writer.write(200 * MiB, Buffer.alloc(MiB, 0x5a), { fua: true });
    await writer.close();
    const v = await open(store);
    for (let i = 0; i < 32; i++) await v.write(i * MiB, Buffer.alloc(MiB, i + 1));
    // Every PUT now takes 40 ms: 32 of them on at most 4 slots take at least 320 ms.
    failing.add({ fault: 'delay', ops: ['put'], delayMs: 40 });
    let flushedAt = 0;
    const t0 = performance.now();
    const flushed = v.flush().then(() => {
      flushedAt = performance.now() - t0;
    });
    await new Promise((r) => setTimeout(r, 20));
    const got = await v.read(200 * MiB + 4096, 4096);
    const readAt = performance.now() - t0;
    await flushed;
    assert.ok(got.equals(Buffer.alloc(4096, 0x5a)));
    assert.ok(flushedAt >= 300, `the flush took ${flushedAt.toFixed(0)} ms (32 slow PUTs)`);
    assert.ok(readAt < flushedAt / 2, `the read finished at ${readAt.toFixed(0)} ms, the flush at ${flushedAt.toFixed(0)} ms: queued behind it`);
    await v.close();
  });

  it('a SYNCHRONIZE CACHE whose drain takes longer than one request may wait for a slot succeeds: uploads are queued a few at a time, not all at once', async () => {
    const failing = new FailingStore(new MemoryObjectStore());
    // A request may wait 800 ms for a slot (the retry deadline in production); the drain of 32
    // chunks at 60 ms per PUT on two flush slots takes 960 ms. Queued all at once, the last
    // upload waits 900 ms for its slot; 16 at a time (the Flusher's parallelism), 420 ms.
    const pool = new IoPool({ concurrency: 4, flushShare: 0.6, backgroundShare: 0.2, maxWaitMs: 800 }, systemClock);
    const v = await open(new PooledStore(failing, pool));
    for (let i = 0; i < 32; i++) await v.write(i * MiB, Buffer.alloc(MiB, i + 1));
    failing.add({ fault: 'delay', ops: ['put'], delayMs: 60 });
    await v.flush();
    assert.equal(failing.seen('put'), 32);
    await v.close();
  });
});
