import { log } from '../util/log';
import type { ChunkMap } from './chunk-map';
import { StorageError } from './errors';
import type { LunLayout } from './layout';
import { listAll, type ObjectStore } from './object-store';
import type { VolumeInfo } from './volume';
import { checkSize, writeVolumeSize } from './volume-meta';

const noop = (): void => undefined;

/**
 * What changes a volume's extent: grows, and defrag's deletion of objects that are no chunk of
 * it. They run one at a time (two grows must not interleave their volume.json rewrites, and an
 * orphan is decided against the size of the moment, never a stale one), and every mutation
 * passes the volume's write gate (`gated`).
 */
export class VolumeResizer {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: ObjectStore,
    private readonly gated: ObjectStore,
    private readonly layout: LunLayout,
    private readonly map: ChunkMap,
    private info: VolumeInfo,
  ) {}

  get current(): VolumeInfo {
    return this.info;
  }

  /**
   * Grows the LUN (s3tgt lun resize, a larger configured size). Chunk objects past the old end
   * (an older, larger life of the name) are deleted first, so the new space reads as zeros;
   * then volume.json records the size; then I/O may use it. The caller tells the initiators
   * (CAPACITY DATA HAS CHANGED, SBC-4 §4.10).
   */
  grow(sizeBytes: number): Promise<VolumeInfo> {
    return this.serialized(async () => {
      const old = this.info;
      if (sizeBytes <= old.sizeBytes)
        throw new StorageError('invalid', `${this.layout.name}: new size ${sizeBytes} is not larger than ${old.sizeBytes}`);
      checkSize(sizeBytes);
      const stale: string[] = [];
      for await (const e of listAll(this.store, this.layout.chunksPrefix, { lane: 'background' })) {
        const i = this.layout.chunkIndexOf(e.key);
        if (i === undefined || i >= this.map.chunks) stale.push(e.key);
      }
      await this.deleteKeys(stale);
      const next = await writeVolumeSize(this.gated, this.layout, old, sizeBytes);
      this.map.grow(Math.ceil(sizeBytes / next.chunkSize));
      this.info = next;
      log.info('LUN grown', { lun: this.layout.name, from: old.sizeBytes, to: sizeBytes, staleDeleted: stale.length });
      return next;
    });
  }

  /** Deletes objects defrag found to be no chunk of this LUN, deciding again now (a grow may have made them chunks). */
  deleteOrphans(keys: readonly string[]): Promise<number> {
    return this.serialized(async () => {
      const doomed = keys.filter((k) => {
        const i = this.layout.chunkIndexOf(k);
        return i === undefined || i >= this.map.chunks;
      });
      await this.deleteKeys(doomed);
      return doomed.length;
    });
  }

  private async deleteKeys(keys: readonly string[]): Promise<void> {
    for (let k = 0; k < keys.length; k += 1000) await this.gated.deleteMany(keys.slice(k, k + 1000), { lane: 'background' });
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.then(noop, noop);
    return run;
  }
}
