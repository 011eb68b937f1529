import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { isStorageError } from '../../src/storage/errors';
import { SEGMENT_SIZE } from '../../src/storage/integrity';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore } from '../../src/storage/object-store';
import { SnapshotCatalog } from '../../src/storage/snapshots/catalog';
import { createClone, hydrateClone } from '../../src/storage/snapshots/clones';
import { createSnapshot, deleteSnapshot, restoreSnapshot } from '../../src/storage/snapshots/operations';
import { lunDataStore, lunReadStore } from '../../src/storage/snapshots/preserving-store';
import { SnapshotResolver, SnapshotView } from '../../src/storage/snapshots/snapshot-view';
import { createVolume, readVolumeInfo } from '../../src/storage/volume-meta';
import { WriteGate } from '../../src/storage/write-gate';
import { systemClock } from '../../src/util/clock';
import { FailingStore } from '../lib/failing-store';
import { MiB, testOptions } from '../lib/volumes';

const SIZE = 6 * MiB;
const OPTIONS = testOptions(8 * MiB);
const P = new LunLayout('p', 'parent');
const C = new LunLayout('p', 'clone');
const gated = (store: ObjectStore): ObjectStore => WriteGate.unleased(systemClock, 'test').bind(store);

/** Opens a LUN the way the server does (volume.json, then its data store). */
async function open(store: ObjectStore, layout: LunLayout): Promise<ChunkVolume> {
  const info = await readVolumeInfo(store, layout);
  assert.ok(info, `${layout.name} exists`);
  return new ChunkVolume(await lunDataStore(store, layout, info), layout, info, OPTIONS, { gate: WriteGate.unleased(systemClock, layout.name) });
}

/** The first byte of every chunk, checking each chunk is uniform; `snapshot`: as that snapshot sees it. */
async function image(store: ObjectStore, layout: LunLayout, snapshot?: string): Promise<number[]> {
  let v: ChunkVolume;
  if (snapshot) {
    const info = await readVolumeInfo(store, layout);
    assert.ok(info);
    const catalog = await SnapshotCatalog.load(store, layout);
    const s = catalog.find(snapshot);
    assert.ok(s);
    const view = new SnapshotView(await lunReadStore(store, layout, info), layout, await SnapshotResolver.load(store, layout, catalog, s));
    v = new ChunkVolume(view, layout, { ...info, sizeBytes: s.sizeBytes }, { ...OPTIONS, readOnly: true });
  } else v = await open(store, layout);
  const out: number[] = [];
  for (let c = 0; c < v.info.sizeBytes / MiB; c++) {
    const b = await v.read(c * MiB, MiB);
    assert.ok(
      b.every((x) => x === b[0]),
      `${layout.name} chunk ${c} is not uniform`,
    );
    out.push(b[0]);
  }
  await v.close();
  return out;
}

async function writeChunks(store: ObjectStore, layout: LunLayout, chunks: Record<number, number>): Promise<void> {
  const v = await open(store, layout);
  for (const [c, fill] of Object.entries(chunks)) await v.write(Number(c) * MiB, Buffer.alloc(MiB, fill));
  await v.close();
}

/** A parent of 6 chunks [1,2,3,4,0,0], snapshot "base", then chunk 1 overwritten with 9 (preserved). */
async function parentWithSnapshot(store: ObjectStore): Promise<void> {
  await createVolume(gated(store), P, SIZE, 512, SEGMENT_SIZE);
  await writeChunks(store, P, { 0: 1, 1: 2, 2: 3, 3: 4 });
  const info = await readVolumeInfo(store, P);
  assert.ok(info);
  await createSnapshot(gated(store), P, info, 'base');
  await writeChunks(store, P, { 1: 9 });
}

describe("clones: writable LUNs sharing a snapshot's chunks (issue 16)", () => {
  it("a clone reads the snapshot; its writes and discards never touch the parent, and the parent's later writes never reach it", async () => {
    const store = new FailingStore(new MemoryObjectStore());
    await parentWithSnapshot(store);
    const info = await createClone(gated(store), P, 'base', C);
    assert.deepEqual(info.parent, { lun: 'parent', snapshot: 'base', snapshotId: 1, sizeBytes: SIZE });
    assert.deepEqual(await image(store, C), [1, 2, 3, 4, 0, 0], 'the clone starts as the snapshot');
    const copiesBefore = store.log.filter((e) => e.op === 'put' && e.key.startsWith('p/clone/chunks/')).length;
    assert.equal(copiesBefore, 0, 'creating a clone copies nothing');

    const c = await open(store, C);
    await c.write(0, Buffer.alloc(MiB, 7));
    await c.discard([{ offset: 2 * MiB, length: MiB }]); // must hide the parent's chunk 2
    await c.write(5 * MiB, Buffer.alloc(MiB, 8)); // past what the parent had
    await c.close();
    await writeChunks(store, P, { 3: 5, 4: 6 }); // the parent after the clone was made
    const p = await open(store, P);
    await p.discard([{ offset: 0, length: MiB }]);
    await p.close();

    assert.deepEqual(await image(store, C), [7, 2, 0, 4, 0, 8], 'the clone: its own writes, the snapshot elsewhere');
    assert.deepEqual(await image(store, P), [0, 9, 3, 5, 6, 0], 'the parent: untouched by the clone');
    assert.deepEqual(await image(store, P, 'base'), [1, 2, 3, 4, 0, 0], 'the parent snapshot: byte-identical');
    const hole = store.log.find((e) => e.op === 'put' && e.key === C.chunkKey(2));
    assert.ok(hole, 'the discard stored a hole marker in the clone');
    assert.ok(
      !store.log.some((e) => (e.op === 'delete' || e.op === 'deleteMany') && e.key.startsWith('p/parent/snapshots/')),
      'nothing of the snapshot was deleted',
    );
  });

  it('a snapshot of a clone preserves inherited chunks (copied from the parent) before the clone overwrites them', async () => {
    const store = new MemoryObjectStore();
    await parentWithSnapshot(store);
    const info = await createClone(gated(store), P, 'base', C);
    await createSnapshot(gated(store), C, info, 'cs');
    await writeChunks(store, C, { 1: 6, 3: 7 });
    const c = await open(store, C);
    await c.discard([{ offset: 0, length: MiB }]);
    await c.close();
    assert.deepEqual(await image(store, C), [0, 6, 3, 7, 0, 0]);
    assert.deepEqual(await image(store, C, 'cs'), [1, 2, 3, 4, 0, 0], "the clone's snapshot keeps what it inherited");
  });

  it('deleting a snapshot with clones is refused; hydration makes the clone independent, then the delete goes through', async () => {
    const store = new FailingStore(new MemoryObjectStore());
    await parentWithSnapshot(store);
    await createClone(gated(store), P, 'base', C);
    await writeChunks(store, C, { 0: 7 });
    const c = await open(store, C);
    await c.discard([{ offset: 2 * MiB, length: MiB }]);
    await c.close();
    await assert.rejects(
      deleteSnapshot(gated(store), P, 'base'),
      (e: unknown) => isStorageError(e, 'invalid') && /has clones \(clone\)/.test(String(e)),
    );
    assert.equal(await store.head(P.snapshotDeletingKey(1)), null, 'the refused delete took its marker back');

    const info = await readVolumeInfo(store, C);
    assert.ok(info);
    store.log.length = 0;
    const r = await hydrateClone(gated(store), C, info);
    assert.equal(r.copied, 2, 'the two inherited chunks with data (1 and 3) were copied');
    assert.equal(r.holes, 1);
    assert.ok(
      store.log.filter((e) => e.op === 'get' && e.key.includes('/chunks/')).length === 0,
      'hydration moved no chunk data through s3tgt (CopyObject only)',
    );
    const after = await readVolumeInfo(store, C);
    assert.equal(after?.parent, undefined, 'volume.json no longer names a parent');
    assert.deepEqual(await image(store, C), [7, 2, 0, 4, 0, 0]);
    await deleteSnapshot(gated(store), P, 'base');
    await writeChunks(store, P, { 1: 1, 2: 1, 3: 1 });
    assert.deepEqual(await image(store, C), [7, 2, 0, 4, 0, 0], 'independent of the parent and its deleted snapshot');
  });

  it('a clone made while its snapshot is being deleted backs off; one whose snapshot is deleted meanwhile fails to open', async () => {
    const store = new MemoryObjectStore();
    await parentWithSnapshot(store);
    await gated(store).put(P.snapshotDeletingKey(1), Buffer.alloc(0));
    await assert.rejects(createClone(gated(store), P, 'base', C), /being deleted/);
    assert.equal(await store.head(P.cloneMarkerKey('clone')), null, 'its marker was taken back');
    assert.equal(await readVolumeInfo(store, C), null);
    await assert.rejects(createClone(gated(store), P, 'nope', C), /no snapshot named "nope"/);
  });

  it("restoring a snapshot of a clone brings back its zeros as zeros, not the parent's chunks", async () => {
    const store = new MemoryObjectStore();
    await parentWithSnapshot(store);
    const info = await createClone(gated(store), P, 'base', C);
    const c = await open(store, C);
    await c.discard([{ offset: 2 * MiB, length: MiB }]);
    await c.close();
    await createSnapshot(gated(store), C, info, 'cs');
    await writeChunks(store, C, { 2: 8, 3: 9 });
    assert.deepEqual(await image(store, C), [1, 2, 8, 9, 0, 0]);
    await restoreSnapshot(gated(store), C, info, 'cs');
    assert.deepEqual(await image(store, C), [1, 2, 0, 4, 0, 0], "chunk 2 was zeros in the snapshot, chunk 3 the parent's");
    assert.deepEqual(await image(store, P, 'base'), [1, 2, 3, 4, 0, 0]);
  });

  it("a clone of a clone reads through both (the middle clone's own chunks, then the first snapshot)", async () => {
    const store = new MemoryObjectStore();
    await parentWithSnapshot(store);
    const info = await createClone(gated(store), P, 'base', C);
    await writeChunks(store, C, { 1: 6 });
    await createSnapshot(gated(store), C, info, 'mid');
    await writeChunks(store, C, { 0: 7, 2: 7 });
    const G = new LunLayout('p', 'grandchild');
    await createClone(gated(store), C, 'mid', G);
    assert.deepEqual(await image(store, G), [1, 6, 3, 4, 0, 0], 'the middle clone as of "mid", over the parent snapshot');
    await writeChunks(store, G, { 3: 8 });
    assert.deepEqual(await image(store, G), [1, 6, 3, 8, 0, 0]);
    assert.deepEqual(await image(store, C), [7, 6, 7, 4, 0, 0]);
  });
});
