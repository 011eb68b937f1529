import { StorageError } from '../errors';
import { type LunLayout, validLunName } from '../layout';
import type { ObjectStore, RequestOptions } from '../object-store';
import { StoredRecord } from '../record';

/** One snapshot of a LUN: ids grow with time, so a larger id is a newer snapshot. */
export interface Snapshot {
  readonly id: number;
  readonly name: string;
  /** ISO 8601 time it was taken. */
  readonly created: string;
  /** The LUN's size then (a LUN may grow afterwards; the snapshot keeps its size). */
  readonly sizeBytes: number;
}

export const CATALOG_RECORD = 'snapshots';

/**
 * The LUN's snapshots (records/snapshots.json), oldest first. It is the truth about which
 * snapshots exist: a snapshot's preserved chunks count only once it is listed here, and a
 * snapshot being deleted stays listed until its chunks were handed to the one before it.
 */
export class SnapshotCatalog {
  private constructor(
    readonly snapshots: readonly Snapshot[],
    /** The next id to give (never reused: a stale preserved chunk can never match a new id). */
    readonly nextId: number,
  ) {}

  static empty(): SnapshotCatalog {
    return new SnapshotCatalog([], 1);
  }

  static async load(store: ObjectStore, layout: LunLayout, opts?: RequestOptions): Promise<SnapshotCatalog> {
    const key = layout.recordKey(CATALOG_RECORD);
    const got = await store.get(key, undefined, opts);
    if (!got) return SnapshotCatalog.empty();
    const rec = StoredRecord.parse(got.body, key);
    rec.get('version').oneOf([1]);
    const nextId = rec.get('nextId').int(1);
    const snapshots = rec
      .get('snapshots')
      .array()
      .map((s) => ({
        id: s.get('id').int(1, nextId - 1),
        name: s.get('name').str(),
        created: s.get('created').str(),
        sizeBytes: s.get('sizeBytes').int(1),
      }));
    for (let i = 1; i < snapshots.length; i++) {
      if (snapshots[i].id <= snapshots[i - 1].id) rec.fail('snapshots are not in increasing id order');
    }
    if (new Set(snapshots.map((s) => s.name)).size !== snapshots.length) rec.fail('two snapshots share a name');
    return new SnapshotCatalog(snapshots, nextId);
  }

  /** Written through the caller's gated store (the lease's write gate). */
  async save(store: ObjectStore, layout: LunLayout, opts?: RequestOptions): Promise<void> {
    const body = { version: 1, nextId: this.nextId, snapshots: this.snapshots };
    await store.put(layout.recordKey(CATALOG_RECORD), Buffer.from(JSON.stringify(body)), opts);
  }

  get newest(): Snapshot | undefined {
    return this.snapshots[this.snapshots.length - 1];
  }

  find(name: string): Snapshot | undefined {
    return this.snapshots.find((s) => s.name === name);
  }

  /** The snapshots newer than `id`, oldest first: where a read of snapshot `id` looks next. */
  newerThan(id: number): Snapshot[] {
    return this.snapshots.filter((s) => s.id > id);
  }

  /** The snapshot just older than `id`, if any. */
  olderThan(id: number): Snapshot | undefined {
    return this.snapshots.filter((s) => s.id < id).pop();
  }

  with(name: string, created: Date, sizeBytes: number): { catalog: SnapshotCatalog; snapshot: Snapshot } {
    if (!validLunName(name)) {
      throw new StorageError('invalid', `invalid snapshot name "${name}" (letters, digits, ".", "_", "-"; at most 63)`, {
        code: 'STORE_ERR_SNAPSHOT',
      });
    }
    if (this.find(name)) throw new StorageError('invalid', `a snapshot named "${name}" exists`, { code: 'STORE_ERR_SNAPSHOT' });
    const snapshot = { id: this.nextId, name, created: created.toISOString(), sizeBytes };
    return { catalog: new SnapshotCatalog([...this.snapshots, snapshot], this.nextId + 1), snapshot };
  }

  without(id: number): SnapshotCatalog {
    return new SnapshotCatalog(
      this.snapshots.filter((s) => s.id !== id),
      this.nextId,
    );
  }
}
