import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { copyRange } from '../../src/scsi/commands/copy-engine';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore } from '../../src/storage/object-store';
import { SnapshotCatalog } from '../../src/storage/snapshots/catalog';
import { createSnapshot } from '../../src/storage/snapshots/operations';
import { lunDataStore } from '../../src/storage/snapshots/preserving-store';
import { SnapshotResolver, SnapshotView } from '../../src/storage/snapshots/snapshot-view';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';
import { FailingStore } from '../lib/failing-store';
import { MiB, testInfo, testOptions } from '../lib/volumes';

const SIZE = 16 * MiB;
// A cache four times the data written: half a cache of dirty chunks starts uploads at once
// (Flusher), which would race with the copy's own uploads of its source chunks.
const OPTIONS = testOptions(64 * MiB);

/** A LUN opened as the server opens it: through its PreservingStore, in the store's copy domain. */
async function open(store: ObjectStore, name: string, domain: string | undefined = 'bucket'): Promise<ChunkVolume> {
  const layout = new LunLayout('p', name);
  const data = await lunDataStore(store, layout, null);
  return new ChunkVolume(data, layout, { ...testInfo(SIZE), name }, OPTIONS, {
    gate: WriteGate.unleased(systemClock, name),
    ...(domain ? { copyDomain: domain } : {}),
  });
}

const ops = (s: FailingStore, op: string): number => s.log.filter((e) => e.op === op).length;

describe('server-side copy: whole chunks of one bucket as CopyObject (issue 16)', () => {
  it('copies whole chunks server-side and the partial head and tail through the target; the result equals a read-and-write copy', async () => {
    const store = new FailingStore(new MemoryObjectStore());
    const src = await open(store, 'src');
    const dst = await open(store, 'dst');
    const data = randomBytes(8 * MiB);
    await src.write(0, data); // dirty in the source's cache: the copy must flush it first
    await dst.write(3 * MiB, Buffer.alloc(MiB, 7)); // dirty in the destination's cache: superseded
    const before = { put: ops(store, 'put'), copy: ops(store, 'copy') };
    // Source [0.5 MiB, 7.5 MiB) to destination [2.5 MiB, 9.5 MiB): chunks 3..8 of the
    // destination are whole and congruent with 1..6 of the source.
    let moved = 0;
    await copyRange({ source: src, destination: dst, sourceOffset: MiB / 2, destinationOffset: 2.5 * MiB, length: 7 * MiB }, (n) => {
      moved += n;
    });
    assert.equal(moved, 7 * MiB);
    assert.equal(ops(store, 'copy') - before.copy, 6, 'six CopyObject requests, one per whole chunk');
    assert.equal(dst.stats.chunksCopied, 6);
    assert.equal(dst.stats.bytesCopiedServerSide, 6 * MiB);
    assert.equal(ops(store, 'put') - before.put, 6, 'the six source chunks copied were uploaded first (and only they)');
    const got = await dst.read(2.5 * MiB, 7 * MiB);
    assert.ok(got.equals(data.subarray(MiB / 2, 7.5 * MiB)), 'destination equals the source range');
    // Nothing cached survived: a cold read of the destination returns the same bytes.
    await dst.close();
    const again = await open(store, 'dst');
    assert.ok((await again.read(2.5 * MiB, 7 * MiB)).equals(data.subarray(MiB / 2, 7.5 * MiB)));
    assert.ok((await again.read(0, 2.5 * MiB)).equals(Buffer.alloc(2.5 * MiB)), 'before the range: untouched');
    await Promise.all([src.close(), again.close()]);
  });

  it('a source chunk with no object deletes the destination chunk (it reads as zeros)', async () => {
    const store = new FailingStore(new MemoryObjectStore());
    const src = await open(store, 'src');
    const dst = await open(store, 'dst');
    await dst.write(0, Buffer.alloc(2 * MiB, 9), { fua: true });
    await copyRange({ source: src, destination: dst, sourceOffset: 4 * MiB, destinationOffset: 0, length: 2 * MiB }, () => undefined);
    assert.ok((await dst.read(0, 2 * MiB)).equals(Buffer.alloc(2 * MiB)));
    assert.equal(ops(store, 'delete') + ops(store, 'deleteMany'), 2, 'one DELETE per copied hole');
    await Promise.all([src.close(), dst.close()]);
  });

  it('volumes of different buckets, unaligned offsets and snapshot views copy through the target', async () => {
    const store = new FailingStore(new MemoryObjectStore());
    const a = await open(store, 'a');
    const b = await open(store, 'b', 'another bucket');
    const data = randomBytes(4 * MiB);
    await a.write(0, data);
    await copyRange({ source: a, destination: b, sourceOffset: 0, destinationOffset: 0, length: 4 * MiB }, () => undefined);
    const c = await open(store, 'c');
    await copyRange({ source: a, destination: c, sourceOffset: 512, destinationOffset: 0, length: 3 * MiB }, () => undefined);
    assert.equal(ops(store, 'copy'), 0, 'no CopyObject: other bucket, or chunks not congruent');
    assert.ok((await b.read(0, 4 * MiB)).equals(data));
    assert.ok((await c.read(0, 3 * MiB)).equals(data.subarray(512, 512 + 3 * MiB)));
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('a copy over a destination with a snapshot preserves the old chunk first (the snapshot keeps its bytes)', async () => {
    const mem = new MemoryObjectStore();
    const store = new FailingStore(mem);
    const layout = new LunLayout('p', 'dst');
    const src = await open(store, 'src');
    let dst = await open(store, 'dst');
    await dst.write(0, Buffer.alloc(2 * MiB, 5));
    await dst.close();
    await createSnapshot(WriteGate.unleased(systemClock, 's').bind(store), layout, { ...testInfo(SIZE), name: 'dst' }, 'before');
    dst = await open(store, 'dst');
    const data = randomBytes(2 * MiB);
    await src.write(0, data);
    await copyRange({ source: src, destination: dst, sourceOffset: 0, destinationOffset: 0, length: 2 * MiB }, () => undefined);
    assert.ok((await dst.read(0, 2 * MiB)).equals(data));
    const catalog = await SnapshotCatalog.load(store, layout);
    const snap = catalog.find('before');
    assert.ok(snap);
    const view = new ChunkVolume(new SnapshotView(store, layout, await SnapshotResolver.load(store, layout, catalog, snap)), layout, testInfo(SIZE), {
      ...OPTIONS,
      readOnly: true,
    });
    assert.ok((await view.read(0, 2 * MiB)).equals(Buffer.alloc(2 * MiB, 5)), 'the snapshot still reads the old bytes');
    await Promise.all([src.close(), dst.close(), view.close()]);
  });

  it('a CopyObject whose answer is lost fails the copy; the destination then reads old or new bytes per chunk, never a mix', async () => {
    const store = new FailingStore(new MemoryObjectStore());
    const src = await open(store, 'src');
    const dst = await open(store, 'dst');
    const data = randomBytes(2 * MiB);
    await src.write(0, data, { fua: true });
    await dst.write(0, Buffer.alloc(2 * MiB, 3), { fua: true });
    store.add({ fault: 'lost-answer', ops: ['copy'], key: /dst\/chunks\/0+1$/, times: 1 });
    await assert.rejects(
      copyRange({ source: src, destination: dst, sourceOffset: 0, destinationOffset: 0, length: 2 * MiB }, () => undefined),
      /injected/,
    );
    store.clear();
    // The failed copy's chunks are dirty again with the old bytes: the next flush stores them.
    await dst.flush();
    await dst.close();
    const again = await open(store, 'dst');
    for (const c of [0, 1]) {
      const b = await again.read(c * MiB, MiB);
      assert.ok(b.equals(data.subarray(c * MiB, (c + 1) * MiB)) || b.equals(Buffer.alloc(MiB, 3)), `chunk ${c}: old or new`);
    }
    await Promise.all([src.close(), again.close()]);
  });
});
