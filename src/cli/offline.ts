import { lunCodec } from '../app/open-volume';
import { Backends } from '../app/stores';
import type { Config, LunConfig } from '../config/config';
import { ChunkVolume } from '../storage/chunk-volume';
import type { ChunkCodec } from '../storage/codec/chunk-codec';
import { codecStore } from '../storage/codec/codec-store';
import { checkKeys } from '../storage/codec/encryption-record';
import type { LunLayout } from '../storage/layout';
import { Lease } from '../storage/lease';
import type { ObjectStore } from '../storage/object-store';
import { lunDataStore } from '../storage/snapshots/preserving-store';
import type { VolumeInfo } from '../storage/volume';
import { readVolumeInfo } from '../storage/volume-meta';
import { CliError } from './errors';

/** What an offline command works with: the LUN's store and keys, under its lease. */
export interface OfflineLun {
  readonly lun: LunConfig;
  /** The LUN's store; every mutation made through it passes the lease's write gate. */
  readonly store: ObjectStore;
  /** The store its chunks are read through: `store`, decoding them where the LUN encodes them. */
  readonly chunkStore: ObjectStore;
  /** How the LUN encodes its chunks (compression, encryption). */
  readonly codec: ChunkCodec;
  readonly layout: LunLayout;
  /** volume.json, or null when the LUN was never created. */
  readonly info: VolumeInfo | null;
  /** Opens the LUN's volume for I/O (closed by withLun); `view`: a read-only store to read instead (a snapshot). */
  volume(info: VolumeInfo, opts?: { cacheBytes?: number; view?: ObjectStore }): ChunkVolume;
}

export function findLun(config: Config, name: string): LunConfig {
  const lun = config.targets.flatMap((t) => t.luns).find((l) => l.name === name);
  if (!lun) throw new CliError('CLI_ERR_NO_LUN', `no LUN named "${name}" in ${config.file}`);
  if (lun.snapshotOf) {
    const { lun: of, snapshot } = lun.snapshotOf;
    throw new CliError(
      'CLI_ERR_USAGE',
      `"${name}" exports snapshot "${snapshot}" of LUN "${of}": name the LUN "${of}" (e.g. export ${of} FILE --snapshot ${snapshot})`,
    );
  }
  return lun;
}

/**
 * Runs an offline command on one LUN: opens its backend, takes its single-writer lease (so a
 * LUN a server is serving is refused with a LeaseError, and no server starts on it meanwhile),
 * runs `fn`, closes the volume it opened (flushing), releases the lease.
 */
export async function withLun<T>(config: Config, name: string, purpose: string, fn: (l: OfflineLun) => Promise<T>): Promise<T> {
  const lun = findLun(config, name);
  const backends = new Backends(config);
  await backends.open();
  try {
    const { backend, layout } = backends.for(lun);
    let volume: ChunkVolume | undefined;
    const lease = await Lease.acquire(backend.store, layout.leaseKey, purpose, config.lease);
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      // Read under the lease: nobody changes it while we work.
      const info = await readVolumeInfo(backend.store, layout);
      const codec = lunCodec(lun);
      const coded = codecStore(backend.store, codec);
      // A LUN with snapshots: every chunk the command overwrites is preserved first.
      const data = await lunDataStore(coded, layout, info);
      if (info) await checkKeys(lease.gate.bind(backend.store), layout, info.uuid, codec, false);
      const value = await fn({
        lun,
        store: lease.gate.bind(backend.store),
        chunkStore: lease.gate.bind(coded),
        codec,
        layout,
        info,
        volume(i, opts) {
          // A LUN created by this command (import) seals its chunks with its new UUID.
          coded.vouch(layout.root, i.uuid);
          volume = new ChunkVolume(
            opts?.view ?? data,
            layout,
            i,
            {
              cacheBytes: opts?.cacheBytes ?? 64 << 20,
              cacheMode: 'write-back',
              readOnly: opts?.view !== undefined,
              flushDelayMs: 0,
              readAheadChunks: 0,
              spaceTimeoutMs: 60_000,
              wholeChunkReads: codec.active,
              sealedChunks: codec.encrypted,
            },
            { gate: lease.gate },
          );
          return volume;
        },
      });
      outcome = { ok: true, value };
    } catch (error) {
      outcome = { ok: false, error };
    }
    // The data must be in the store before the lease goes; if it cannot get there, the lease
    // is kept until it expires rather than handed to someone with data missing.
    await volume?.close();
    await lease.release();
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  } finally {
    await backends.close();
  }
}
