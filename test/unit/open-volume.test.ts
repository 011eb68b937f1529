import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openLun } from '../../src/app/open-volume';
import type { LunConfig } from '../../src/config/config';
import { SEGMENT_SIZE } from '../../src/storage/integrity';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import { createVolume, readVolumeInfo } from '../../src/storage/volume-meta';

const MiB = 1024 * 1024;

describe('opening a LUN to serve it (issue 13, defect 9)', () => {
  it('reads volume.json after taking the lease: a resize by the lease holder before it is served', async () => {
    const store = new MemoryObjectStore();
    const layout = new LunLayout('luns', 'disk0');
    const info = await createVolume(store, layout, 64 * MiB, 512, SEGMENT_SIZE);
    // `s3tgt lun resize` holds the lease (another host), grows the LUN, then releases the lease.
    const holder = { holder: 'cli', purpose: 'resize', host: 'admin-host', pid: 7, acquiredAt: 'now', renewedAt: 'now', ttlMs: 600, generation: 0 };
    await store.put(layout.leaseKey, Buffer.from(JSON.stringify(holder)));
    setTimeout(() => {
      void (async () => {
        await store.put(layout.volumeKey, Buffer.from(JSON.stringify({ formatVersion: 1, ...info, sizeBytes: 128 * MiB })));
        await store.delete(layout.leaseKey);
      })();
    }, 150);
    const lun = {
      lun: 0,
      name: 'disk0',
      store: 's3',
      sizeBytes: 64 * MiB,
      blockSize: 512,
      cacheBytes: 16 * MiB,
      cacheMode: 'write-back',
      journal: false,
      flushDelayMs: 50,
      readOnly: false,
    } as const satisfies LunConfig;
    const o = await openLun(store, layout, lun, { ttlMs: 600, renewEveryMs: 100, marginMs: 150 });
    try {
      assert.equal(o.volume.info.sizeBytes, 128 * MiB, 'the size the resize wrote, not the one before');
      assert.equal((await readVolumeInfo(store, layout))?.sizeBytes, 128 * MiB);
    } finally {
      await o.volume.close();
      await o.lease.release();
    }
  });
});
