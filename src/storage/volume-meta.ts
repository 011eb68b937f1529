import { randomUUID } from 'node:crypto';
import { StorageError } from './errors';
import { CHUNK_SIZE, FORMAT_VERSION, type LunLayout } from './layout';
import type { ObjectStore } from './object-store';
import type { VolumeInfo } from './volume';

/**
 * `volume.json`: what a LUN is. Written once with If-None-Match: *, so two creators cannot race.
 * Writers pass the store view of the LUN's write gate (WriteGate.bind), under its lease.
 */
interface VolumeJson extends VolumeInfo {
  readonly formatVersion: number;
}

export async function readVolumeInfo(store: ObjectStore, layout: LunLayout): Promise<VolumeInfo | null> {
  const got = await store.get(layout.volumeKey);
  if (!got) return null;
  let v: unknown;
  try {
    v = JSON.parse(got.body.toString('utf8'));
  } catch {
    throw new StorageError('data', `${layout.volumeKey} is not valid JSON`, { code: 'STORE_ERR_RECORD' });
  }
  return validate(v, layout.volumeKey);
}

export async function createVolume(store: ObjectStore, layout: LunLayout, sizeBytes: number, logicalBlockSize: 512 | 4096): Promise<VolumeInfo> {
  checkSize(sizeBytes);
  const info: VolumeJson = {
    formatVersion: FORMAT_VERSION,
    name: layout.name,
    sizeBytes,
    logicalBlockSize,
    chunkSize: CHUNK_SIZE,
    uuid: randomUUID(),
    created: new Date().toISOString(),
  };
  await store.put(layout.volumeKey, Buffer.from(`${JSON.stringify(info, null, 2)}\n`), { ifNoneMatch: '*' });
  return info;
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

function validate(v: unknown, key: string): VolumeInfo {
  const bad = (why: string): never => {
    throw new StorageError('data', `${key}: ${why}`, { code: 'STORE_ERR_RECORD' });
  };
  if (typeof v !== 'object' || v === null) return bad('not an object');
  const o = v as Record<string, unknown>;
  if (o.formatVersion !== FORMAT_VERSION) bad(`unsupported format version ${String(o.formatVersion)}`);
  if (typeof o.name !== 'string') bad('missing name');
  if (typeof o.sizeBytes !== 'number' || !Number.isSafeInteger(o.sizeBytes) || o.sizeBytes <= 0) bad('bad sizeBytes');
  if (o.logicalBlockSize !== 512 && o.logicalBlockSize !== 4096) bad('bad logicalBlockSize');
  if (o.chunkSize !== CHUNK_SIZE) bad(`chunk size ${String(o.chunkSize)} is not 1 MiB`);
  if (typeof o.uuid !== 'string' || !/^[0-9a-f-]{36}$/.test(o.uuid)) bad('bad uuid');
  if (typeof o.created !== 'string') bad('missing created');
  return {
    name: o.name as string,
    sizeBytes: o.sizeBytes as number,
    logicalBlockSize: o.logicalBlockSize as 512 | 4096,
    chunkSize: CHUNK_SIZE,
    uuid: o.uuid as string,
    created: o.created as string,
  };
}
