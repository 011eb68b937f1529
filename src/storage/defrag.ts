import { forEachParallel } from '../util/parallel';
import type { ChunkVolume } from './chunk-volume';
import type { LunLayout } from './layout';
import { listAll, type ObjectStore } from './object-store';

export interface DefragReport {
  readonly lun: string;
  readonly dryRun: boolean;
  readonly objectsScanned: number;
  /** Chunk objects that hold data and verify. */
  readonly mappedChunks: number;
  /** All-zero chunk objects: deleted (or, in a dry run, to be deleted). */
  readonly zeroChunks: { readonly count: number; readonly bytes: number };
  /** Objects that are no chunk of this LUN: beyond its size, bad names, leftovers of crashes. */
  readonly orphans: { readonly count: number; readonly bytes: number; readonly keys: readonly string[] };
  /** Keys under the LUN that are neither ours nor chunk keys: reported, left alone. */
  readonly unknown: readonly string[];
  /** Chunks whose checksum does not verify: reported, never deleted. */
  readonly corrupt: readonly string[];
  /** Chunks with cached writes not yet uploaded: left to the flusher. */
  readonly busy: number;
  readonly reclaimed: { readonly objects: number; readonly bytes: number };
  readonly durationMs: number;
  /** `defrag --rekey`: snapshot chunks sealed again, the keys the record dropped, whether the pass was complete. */
  readonly rekey?: { readonly snapshotChunks: number; readonly forgottenKeys: readonly string[]; readonly complete: boolean };
}

export type Progress = (done: number, total: number) => void;

/** Keys that belong to a LUN without being chunks. */
const KNOWN =
  /\/(volume\.json|lease\.json|records\/[a-z0-9-]+\.json|snapshots\/[0-9]+\/(chunks\/[0-9a-f]{16}|deleting)|clones\/[A-Za-z0-9._-]+\.json)$/;

/**
 * `s3tgt defrag`: scans every object of a LUN and
 * - deletes chunks that are entirely zero (through the volume, so a chunk with cached writes
 *   is never deleted under them and a DELETE never overtakes a PUT of the same chunk);
 * - deletes orphans: chunk keys beyond the LUN size or with bad names, and leftovers of
 *   interrupted writes (through the volume too: every deletion passes its write gate);
 * - verifies every chunk's checksums and reports the corrupt ones (never deletes them);
 * - rebuilds the allocation map from what it found;
 * - with `reseal`, stores every chunk with data again (re-encoded with the current key).
 * With dryRun it reports the same without changing anything.
 */
export async function defrag(
  volume: ChunkVolume,
  store: ObjectStore,
  layout: LunLayout,
  opts: { dryRun: boolean; onProgress?: Progress; parallel?: number; reseal?: boolean },
): Promise<DefragReport> {
  const t0 = Date.now();
  const chunks: number[] = [];
  const orphans: Array<{ key: string; size: number }> = [];
  const unknown: string[] = [];
  let scanned = 0;
  for await (const e of listAll(store, `${layout.root}/`, { lane: 'background' })) {
    scanned++;
    const index = layout.chunkIndexOf(e.key);
    if (index !== undefined && index < Math.ceil(volume.info.sizeBytes / volume.info.chunkSize)) chunks.push(index);
    else if (index !== undefined || e.key.startsWith(layout.chunksPrefix)) orphans.push(e);
    else if (!KNOWN.test(e.key)) unknown.push(e.key);
  }
  for (const l of (await store.listLeftovers?.(`${layout.root}/`)) ?? []) orphans.push(l);

  const total = chunks.length + orphans.length;
  let done = 0;
  const tick = (): void => opts.onProgress?.(++done, total);
  const counts = { mapped: 0, zero: 0, busy: 0 };
  const corrupt: string[] = [];
  const present = new Set<number>();
  await forEachParallel(chunks.length, opts.parallel ?? 8, async (k) => {
    const index = chunks[k];
    const r = await volume.scrubChunk(index, opts.dryRun, opts.reseal ?? false);
    if (r === 'mapped' || r === 'busy' || r === 'corrupt' || (r === 'zero' && opts.dryRun)) present.add(index);
    if (r === 'corrupt') corrupt.push(layout.chunkKey(index));
    else if (r !== 'hole') counts[r]++;
    tick();
  });

  const orphanBytes = orphans.reduce((n, o) => n + o.size, 0);
  // The volume decides again, one at a time with grows, under the lease: a chunk key that was
  // past the end when listed may be a chunk of the grown LUN by now.
  if (!opts.dryRun && orphans.length > 0) await volume.deleteOrphans(orphans.map((o) => o.key));
  for (let i = 0; i < orphans.length; i++) tick();
  (await volume.chunkStates()).reconcile(present);

  const zeroBytes = counts.zero * volume.info.chunkSize;
  return {
    lun: layout.name,
    dryRun: opts.dryRun,
    objectsScanned: scanned,
    mappedChunks: counts.mapped,
    zeroChunks: { count: counts.zero, bytes: zeroBytes },
    orphans: { count: orphans.length, bytes: orphanBytes, keys: orphans.slice(0, 50).map((o) => o.key) },
    unknown,
    corrupt,
    busy: counts.busy,
    reclaimed: opts.dryRun ? { objects: 0, bytes: 0 } : { objects: counts.zero + orphans.length, bytes: zeroBytes + orphanBytes },
    durationMs: Date.now() - t0,
  };
}
