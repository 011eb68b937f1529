import { randomUUID } from 'node:crypto';
import { StorageError } from './errors';
import { CHUNK_SIZE, FORMAT_VERSION, type LunLayout, validLunName } from './layout';
import type { ObjectStore } from './object-store';
import { StoredRecord } from './record';
import type { CloneParent, VolumeInfo } from './volume';

/**
 * `volume.json`: what a LUN is. Written once with If-None-Match: *, so two creators cannot race.
 * Writers pass the store view of the LUN's write gate (WriteGate.bind), under its lease.
 */
interface VolumeJson extends VolumeInfo {
  readonly formatVersion: number;
}

export async function readVolumeInfo(store: ObjectStore, layout: LunLayout): Promise<VolumeInfo | null> {
  const got = await store.get(layout.volumeKey);
  return got ? validate(StoredRecord.parse(got.body, layout.volumeKey)) : null;
}

export async function createVolume(
  store: ObjectStore,
  layout: LunLayout,
  sizeBytes: number,
  logicalBlockSize: 512 | 4096,
  parent?: CloneParent,
): Promise<VolumeInfo> {
  checkSize(sizeBytes);
  const info: VolumeJson = {
    formatVersion: FORMAT_VERSION,
    name: layout.name,
    sizeBytes,
    logicalBlockSize,
    chunkSize: CHUNK_SIZE,
    uuid: randomUUID(),
    created: new Date().toISOString(),
    ...(parent ? { parent } : {}),
  };
  await store.put(layout.volumeKey, Buffer.from(`${JSON.stringify(info, null, 2)}\n`), { ifNoneMatch: '*' });
  return info;
}

/** Rewrites volume.json of a clone that no longer reads anything of its parent (hydrated). */
export async function writeVolumeIndependent(store: ObjectStore, layout: LunLayout, info: VolumeInfo): Promise<VolumeInfo> {
  const { parent: _, ...rest } = info;
  const next: VolumeJson = { ...rest, formatVersion: FORMAT_VERSION };
  await store.put(layout.volumeKey, Buffer.from(`${JSON.stringify(next, null, 2)}\n`));
  return next;
}

/** Rewrites volume.json with a new size (resize); the UUID and everything else stay. */
export async function writeVolumeSize(store: ObjectStore, layout: LunLayout, info: VolumeInfo, sizeBytes: number): Promise<VolumeInfo> {
  checkSize(sizeBytes);
  const next: VolumeJson = { ...info, formatVersion: FORMAT_VERSION, sizeBytes };
  await store.put(layout.volumeKey, Buffer.from(`${JSON.stringify(next, null, 2)}\n`));
  return next;
}

export function checkSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % CHUNK_SIZE !== 0) {
    throw new StorageError('invalid', `LUN size ${sizeBytes} must be a positive multiple of 1 MiB`);
  }
}

function validate(r: StoredRecord): VolumeInfo {
  const version = r.get('formatVersion');
  if (version.present && version.int() !== FORMAT_VERSION) version.fail(`unsupported format version (this s3tgt reads ${FORMAT_VERSION})`);
  if (!version.present) version.fail('missing');
  const uuid = (f: StoredRecord): string => (/^[0-9a-f-]{36}$/.test(f.str()) ? f.str() : f.fail('not a UUID'));
  const parent = r.get('parent');
  return {
    ...(parent.present ? { parent: cloneParent(parent) } : {}),
    name: r.get('name').str(),
    sizeBytes: r.get('sizeBytes').int(1),
    logicalBlockSize: r.get('logicalBlockSize').oneOf([512, 4096] as const),
    chunkSize: r.get('chunkSize').oneOf([CHUNK_SIZE]),
    uuid: uuid(r.get('uuid')),
    created: r.get('created').str(true),
  };
}

function cloneParent(f: StoredRecord): CloneParent {
  const lun = f.get('lun').str();
  if (!validLunName(lun)) f.get('lun').fail('not a LUN name');
  return {
    lun,
    snapshot: f.get('snapshot').str(),
    snapshotId: f.get('snapshotId').int(1),
    sizeBytes: f.get('sizeBytes').int(1),
  };
}
