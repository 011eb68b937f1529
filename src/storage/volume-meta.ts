import { randomUUID } from 'node:crypto';
import { StorageError } from './errors';
import { FINE_SEGMENT_SIZE, SEGMENT_SIZE } from './integrity';
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

/**
 * Format 2 is format 1 with a checksum segment other than 64 KiB (`segmentSize`): an s3tgt
 * that knows only format 1 refuses such a LUN instead of checking its chunks with the wrong
 * grain. A LUN with 64 KiB segments stays format 1.
 */
const FINE_FORMAT_VERSION = 2;

/** A LUN's checksum segment: volume.json's `segmentSize`, 64 KiB when absent (format 1). */
export function segmentSizeOf(info: VolumeInfo): number {
  return info.segmentSize ?? SEGMENT_SIZE;
}

function formatOf(info: VolumeInfo): number {
  return segmentSizeOf(info) === SEGMENT_SIZE ? FORMAT_VERSION : FINE_FORMAT_VERSION;
}

/** The checksum segment of a new LUN on a store of this kind (integrity.ts says why). */
export function segmentSizeFor(store: 'file' | 's3'): number {
  return store === 'file' ? FINE_SEGMENT_SIZE : SEGMENT_SIZE;
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
  /** The checksum segment (segmentSizeFor); a clone takes its parent's: it reads its chunks. */
  segmentSize: number,
  parent?: CloneParent,
): Promise<VolumeInfo> {
  checkSize(sizeBytes);
  if (segmentSize !== SEGMENT_SIZE && segmentSize !== FINE_SEGMENT_SIZE) {
    throw new StorageError('invalid', `checksum segment ${segmentSize} must be ${FINE_SEGMENT_SIZE} or ${SEGMENT_SIZE}`);
  }
  const base: VolumeInfo = {
    name: layout.name,
    sizeBytes,
    logicalBlockSize,
    chunkSize: CHUNK_SIZE,
    ...(segmentSize !== SEGMENT_SIZE ? { segmentSize } : {}),
    uuid: randomUUID(),
    created: new Date().toISOString(),
    ...(parent ? { parent } : {}),
  };
  const info: VolumeJson = { formatVersion: formatOf(base), ...base };
  await store.put(layout.volumeKey, Buffer.from(`${JSON.stringify(info, null, 2)}\n`), { ifNoneMatch: '*' });
  return info;
}

/** Rewrites volume.json of a clone that no longer reads anything of its parent (hydrated). */
export async function writeVolumeIndependent(store: ObjectStore, layout: LunLayout, info: VolumeInfo): Promise<VolumeInfo> {
  const { parent: _, ...rest } = info;
  const next: VolumeJson = { ...rest, formatVersion: formatOf(rest) };
  await store.put(layout.volumeKey, Buffer.from(`${JSON.stringify(next, null, 2)}\n`));
  return next;
}

/** Rewrites volume.json with a new size (resize); the UUID and everything else stay. */
export async function writeVolumeSize(store: ObjectStore, layout: LunLayout, info: VolumeInfo, sizeBytes: number): Promise<VolumeInfo> {
  checkSize(sizeBytes);
  const next: VolumeJson = { ...info, formatVersion: formatOf(info), sizeBytes };
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
  if (!version.present) version.fail('missing');
  const format = version.int();
  if (format !== FORMAT_VERSION && format !== FINE_FORMAT_VERSION) {
    version.fail(`unsupported format version (this s3tgt reads ${FORMAT_VERSION} and ${FINE_FORMAT_VERSION})`);
  }
  const seg = r.get('segmentSize');
  if (format === FINE_FORMAT_VERSION && !seg.present) seg.fail('missing (format 2)');
  if (format === FORMAT_VERSION && seg.present) seg.fail('only in format 2');
  const segmentSize = seg.present ? seg.oneOf([FINE_SEGMENT_SIZE] as const) : undefined;
  const uuid = (f: StoredRecord): string => (/^[0-9a-f-]{36}$/.test(f.str()) ? f.str() : f.fail('not a UUID'));
  const parent = r.get('parent');
  return {
    ...(parent.present ? { parent: cloneParent(parent) } : {}),
    name: r.get('name').str(),
    sizeBytes: r.get('sizeBytes').int(1),
    logicalBlockSize: r.get('logicalBlockSize').oneOf([512, 4096] as const),
    chunkSize: r.get('chunkSize').oneOf([CHUNK_SIZE]),
    ...(segmentSize !== undefined ? { segmentSize } : {}),
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
