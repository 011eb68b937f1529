import { forEachParallel } from '../../util/parallel';
import { chunkKeyPlace, type LunLayout } from '../layout';
import { listAll, type ObjectStore } from '../object-store';

/**
 * Every chunk the LUN's snapshots preserved, read (decoded) and written back at the same key
 * through `store` (the LUN's codec store, under its lease): sealed again with the current key
 * and as this LUN's own. A snapshot's chunk i is still chunk i of the same LUN. Used by
 * `defrag --rekey`, and by the hydration of an encrypted clone, whose snapshots may hold
 * copies of objects its parent sealed.
 */
export async function resealSnapshots(store: ObjectStore, layout: LunLayout): Promise<number> {
  const keys: string[] = [];
  for await (const e of listAll(store, `${layout.root}/snapshots/`, { lane: 'background' })) {
    if (e.size > 0 && chunkKeyPlace(e.key)) keys.push(e.key);
  }
  await forEachParallel(keys.length, 8, async (k) => {
    const got = await store.get(keys[k], undefined, { lane: 'background' });
    if (!got) return;
    await store.put(keys[k], got.body, { lane: 'background', metadata: got.meta.metadata });
  });
  return keys.length;
}
