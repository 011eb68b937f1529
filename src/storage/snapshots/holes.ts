import type { ObjectStore, RequestOptions } from '../object-store';

/**
 * Metadata of a hole marker, a zero-length object where a chunk would be: in a snapshot, the
 * chunk did not exist when the snapshot was taken; in a clone, the clone deallocated it (the
 * parent's chunk is hidden). Chunk objects are never empty, so the size alone tells.
 */
export const HOLE_METADATA = { 's3tgt-hole': '1' } as const;

/** Stores a hole marker at `key` (a snapshot's or a clone's chunk). */
export async function putHole(store: ObjectStore, key: string, opts?: RequestOptions): Promise<void> {
  await store.put(key, Buffer.alloc(0), { ...opts, metadata: { ...HOLE_METADATA } });
}
