import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { segmentCrcs } from '../../src/storage/integrity';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore } from '../../src/storage/object-store';
import { SnapshotCatalog } from '../../src/storage/snapshots/catalog';
import { createSnapshot, deleteSnapshot, listSnapshots, restoreSnapshot } from '../../src/storage/snapshots/operations';
import { lunDataStore, PreservingStore } from '../../src/storage/snapshots/preserving-store';
import { SnapshotResolver, SnapshotView } from '../../src/storage/snapshots/snapshot-view';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';
import { FailingStore } from '../lib/failing-store';
import { MiB, TEST_LAYOUT, testInfo, testOptions } from '../lib/volumes';

const layout = TEST_LAYOUT;
const INFO = testInfo(8 * MiB);
const OPTIONS = testOptions(8 * MiB);

/** A fresh gate per "process": what the lease gives the server and the CLI. */
const gated = (store: ObjectStore): { gate: WriteGate; store: ObjectStore } => {
  const gate = WriteGate.unleased(systemClock, 'snap');
  return { gate, store: gate.bind(store) };
};

/** Opens the LUN as the server does (through lunDataStore), writes `fill` at each chunk in `chunks`, closes (flushes). */
async function writeChunks(store: ObjectStore, chunks: readonly number[], fill: number): Promise<void> {
  const { gate } = gated(store);
  const data = await lunDataStore(store, layout, null);
  const v = new ChunkVolume(data, layout, INFO, OPTIONS, { gate });
  for (const c of chunks) await v.write(c * MiB, Buffer.alloc(MiB, fill));
  await v.close();
}

/** The LUN as a snapshot sees it: byte value of the first byte of every chunk (0 for a hole). */
async function image(store: ObjectStore, name?: string): Promise<number[]> {
  let view: ObjectStore = store;
  let info = INFO;
  if (name) {
    const catalog = await SnapshotCatalog.load(store, layout);
    const s = catalog.find(name);
    assert.ok(s, name);
    view = new SnapshotView(store, layout, await SnapshotResolver.load(store, layout, catalog, s));
    info = { ...INFO, sizeBytes: s.sizeBytes };
  }
  const v = new ChunkVolume(view, layout, info, { ...OPTIONS, readOnly: name !== undefined }, { gate: WriteGate.unleased(systemClock, 'read') });
  const out: number[] = [];
  for (let c = 0; c < info.sizeBytes / MiB; c++) {
    const b = await v.read(c * MiB, MiB);
    assert.ok(
      b.every((x) => x === b[0]),
      `chunk ${c} is not uniform`,
    );
    out.push(b[0]);
  }
  await v.close();
  return out;
}

describe('snapshots: copy-on-first-write into the newest snapshot (issue 16)', () => {
  it('each snapshot keeps the LUN as it was; the live LUN keeps chunks/<i> current; a chunk is preserved once per snapshot', async () => {
    const mem = new MemoryObjectStore();
    await writeChunks(mem, [0, 1, 2], 1);
    await createSnapshot(gated(mem).store, layout, INFO, 'a');
    const copies = (): number => mem.count(`${layout.root}/snapshots/`);
    await writeChunks(mem, [1, 3], 2); // chunk 3 did not exist at "a": a hole marker
    assert.equal(copies(), 2);
    await writeChunks(mem, [1, 3], 3); // already preserved: no more copies
    assert.equal(copies(), 2);
    await createSnapshot(gated(mem).store, layout, INFO, 'b');
    await writeChunks(mem, [0, 1, 5], 4);
    assert.deepEqual(await image(mem, 'a'), [1, 1, 1, 0, 0, 0, 0, 0]);
    assert.deepEqual(await image(mem, 'b'), [1, 3, 1, 3, 0, 0, 0, 0]);
    assert.deepEqual(await image(mem), [4, 4, 1, 3, 0, 4, 0, 0]);
    assert.ok(
      mem.peek(layout.chunkKey(0))?.every((x) => x === 4),
      'chunks/<i> is the live data',
    );
    const listed = await listSnapshots(mem, layout);
    assert.deepEqual(
      listed.map((s) => [s.name, s.preservedChunks]),
      [
        ['a', 2],
        ['b', 3],
      ],
    );
  });

  it('deleting a middle snapshot hands its chunks to the older one: every other snapshot reads the same', async () => {
    const mem = new MemoryObjectStore();
    await writeChunks(mem, [0, 1], 1);
    await createSnapshot(gated(mem).store, layout, INFO, 'a');
    await writeChunks(mem, [2], 2);
    await createSnapshot(gated(mem).store, layout, INFO, 'b');
    await writeChunks(mem, [0, 2, 4], 3);
    await createSnapshot(gated(mem).store, layout, INFO, 'c');
    await writeChunks(mem, [1, 2], 4);
    const before = { a: await image(mem, 'a'), c: await image(mem, 'c'), live: await image(mem) };
    const r = await deleteSnapshot(gated(mem).store, layout, 'b');
    assert.ok(r.handedOver >= 2, `handed over ${r.handedOver}`);
    assert.deepEqual(await image(mem, 'a'), before.a);
    assert.deepEqual(await image(mem, 'c'), before.c);
    assert.deepEqual(await image(mem), before.live);
    assert.equal(mem.count(`${layout.root}/snapshots/2/`), 0, "the deleted snapshot's objects are gone");
    assert.deepEqual(
      (await SnapshotCatalog.load(mem, layout)).snapshots.map((s) => s.name),
      ['a', 'c'],
    );
  });

  it('restore rolls the live LUN back; the newer snapshots keep their contents', async () => {
    const mem = new MemoryObjectStore();
    await writeChunks(mem, [0, 1], 1);
    await createSnapshot(gated(mem).store, layout, INFO, 'a');
    await writeChunks(mem, [1, 2, 6], 2);
    await createSnapshot(gated(mem).store, layout, INFO, 'b');
    await writeChunks(mem, [0, 7], 3);
    const b = await image(mem, 'b');
    await restoreSnapshot(gated(mem).store, layout, INFO, 'a');
    assert.deepEqual(await image(mem), [1, 1, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(await image(mem, 'a'), [1, 1, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(await image(mem, 'b'), b);
    // And forward again: restore "b".
    await restoreSnapshot(gated(mem).store, layout, INFO, 'b');
    assert.deepEqual(await image(mem), b);
  });

  it('a preserving copy whose answer is lost is retried before the overwrite; one that fails keeps the overwrite from leaving', async () => {
    const mem = new MemoryObjectStore();
    await writeChunks(mem, [0], 1);
    await createSnapshot(gated(mem).store, layout, INFO, 'a');
    const net = new FailingStore(mem);
    net.add({ fault: 'lost-answer', ops: ['copy'], times: 1 });
    const { store: g } = gated(net);
    const p = new PreservingStore(g, layout, (await SnapshotCatalog.load(mem, layout)).newest);
    await assert.rejects(p.put(layout.chunkKey(0), Buffer.alloc(MiB, 9)), { kind: 'unavailable' });
    assert.ok(
      mem.peek(layout.chunkKey(0))?.every((x) => x === 1),
      'no overwrite after a copy with no answer',
    );
    // The copy did land; the retry (next flush) sees it and overwrites.
    await p.put(layout.chunkKey(0), Buffer.alloc(MiB, 9));
    assert.deepEqual(await image(mem, 'a'), [1, 0, 0, 0, 0, 0, 0, 0]);
    net.add({ fault: 'error', ops: ['copy'] });
    const p2 = new PreservingStore(g, layout, (await SnapshotCatalog.load(mem, layout)).newest);
    await assert.rejects(p2.put(layout.chunkKey(1), Buffer.alloc(MiB, 9)), { kind: 'unavailable' });
    assert.equal(mem.peek(layout.chunkKey(1)), undefined, 'the overwrite did not leave');
  });

  it('after a restart (nothing listed yet) a chunk preserved before is not copied again over its old data', async () => {
    const mem = new MemoryObjectStore();
    await writeChunks(mem, [0], 1);
    await createSnapshot(gated(mem).store, layout, INFO, 'a');
    await writeChunks(mem, [0], 2);
    await writeChunks(mem, [0], 3); // a new process: HEAD finds the preserved copy
    assert.deepEqual(await image(mem, 'a'), [1, 0, 0, 0, 0, 0, 0, 0]);
    const listedFirst = new PreservingStore(gated(mem).store, layout, (await SnapshotCatalog.load(mem, layout)).newest);
    await listedFirst.loadPreserved();
    assert.ok(listedFirst.isPreserved(0) && !listedFirst.isPreserved(1));
  });

  it('names are checked and unique; an unknown snapshot is a clear error', async () => {
    const mem = new MemoryObjectStore();
    const g = gated(mem).store;
    await createSnapshot(g, layout, INFO, 'nightly-1');
    await assert.rejects(createSnapshot(g, layout, INFO, 'nightly-1'), { code: 'STORE_ERR_SNAPSHOT', message: /exists/ });
    await assert.rejects(createSnapshot(g, layout, INFO, 'bad/name'), { code: 'STORE_ERR_SNAPSHOT' });
    await assert.rejects(deleteSnapshot(g, layout, 'nope'), { code: 'STORE_ERR_SNAPSHOT', message: /no snapshot named "nope"/ });
  });

  it('replaceContents: afterwards reads see what the store holds, not the cache; a reader still holding a view keeps its bytes', async () => {
    const mem = new MemoryObjectStore();
    const v = new ChunkVolume(mem, layout, INFO, OPTIONS, { gate: WriteGate.unleased(systemClock, 'rc') });
    await v.write(0, Buffer.alloc(MiB, 1));
    const view = await v.readView(0, MiB); // a Data-In still being sent
    await v.replaceContents(async () => {
      await mem.put(layout.chunkKey(0), Buffer.alloc(MiB, 2), { metadata: { 's3tgt-crc32c': segmentCrcs(Buffer.alloc(MiB, 2)) } });
    });
    assert.equal((await v.read(0, MiB))[0], 2, 'the cache was forgotten');
    await v.write(0, Buffer.alloc(MiB, 3));
    assert.ok(
      view.data.every((x) => x === 1),
      'the evicted buffer was not reused under the reader',
    );
    view.release();
    assert.equal((await v.read(0, MiB))[0], 3);
    await v.close();
  });
});
