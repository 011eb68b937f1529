import { open } from 'node:fs/promises';
import type { Config } from '../config/config';
import { formatSize } from '../config/units';
import type { ChunkVolume } from '../storage/chunk-volume';
import type { ObjectStore } from '../storage/object-store';
import { SnapshotCatalog } from '../storage/snapshots/catalog';
import { lunReadStore } from '../storage/snapshots/preserving-store';
import { SnapshotResolver, SnapshotView } from '../storage/snapshots/snapshot-view';
import { createVolume, segmentSizeFor } from '../storage/volume-meta';
import { forEachParallel } from '../util/parallel';
import { ProgressBar } from '../util/progress';
import { CliError } from './errors';
import { withLun } from './offline';

/** Chunks moved at once: enough to keep the S3 pool busy, bounded in memory (1 MiB each). */
const PARALLEL = 16;
const MiB = 1024 * 1024;

export interface ImageReport {
  readonly bytes: number;
  /** Chunks that carried data (the rest were holes: not read, not written). */
  readonly dataChunks: number;
  readonly holeChunks: number;
  readonly seconds: number;
}

function isZero(b: Buffer): boolean {
  // Compare 8 bytes at a time; all-zero chunks are the common case in sparse images.
  const words = Math.floor(b.length / 8);
  for (let i = 0; i < words; i++) if (b.readBigUInt64LE(i * 8) !== 0n) return false;
  for (let i = words * 8; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * `s3tgt import <lun> <file>`: a raw image into the LUN (created with the configured size if
 * needed). All-zero chunks of the image become holes (deleted if the LUN had data there), so
 * a sparse image stays sparse; the LUN past the end of the image is left as it was.
 */
export async function importImage(config: Config, name: string, file: string): Promise<ImageReport> {
  const fh = await open(file, 'r').catch((e: Error) => {
    throw new CliError('CLI_ERR_IO', `cannot open ${file}: ${e.message}`);
  });
  try {
    const size = (await fh.stat()).size;
    return await withLun(config, name, 'import', async (l) => {
      const info = l.info ?? (await createVolume(l.store, l.layout, l.lun.sizeBytes, l.lun.blockSize, segmentSizeFor(l.lun.store)));
      if (size > info.sizeBytes)
        throw new CliError('CLI_ERR_USAGE', `${file} is ${formatSize(size)}, larger than LUN "${name}" (${formatSize(info.sizeBytes)})`);
      if (size % info.logicalBlockSize !== 0)
        throw new CliError('CLI_ERR_USAGE', `${file} is not a whole number of ${info.logicalBlockSize}-byte blocks`);
      const volume = l.volume(info);
      await volume.allocation({ offset: 0, length: 0 }); // loads the allocation map: holes cost no request
      const started = Date.now();
      const chunks = Math.ceil(size / MiB);
      const bar = new ProgressBar(`import ${name}`, 'MiB');
      let done = 0;
      let data = 0;
      await forEachParallel(chunks, PARALLEL, async (i) => {
        const offset = i * MiB;
        const len = Math.min(MiB, size - offset);
        const buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await fh.read(buf, 0, len, offset);
        if (bytesRead !== len) throw new CliError('CLI_ERR_IO', `${file}: short read at ${offset}`);
        if (isZero(buf)) await volume.discard([{ offset, length: len }]);
        else {
          await volume.write(offset, buf);
          data++;
        }
        bar.update(++done, chunks);
      });
      await volume.flush();
      bar.done();
      return { bytes: size, dataChunks: data, holeChunks: chunks - data, seconds: (Date.now() - started) / 1000 };
    });
  } finally {
    await fh.close();
  }
}

/**
 * `s3tgt export <lun> <file>`: the LUN into a raw image file of the LUN's size. Chunks the
 * store does not have are not read and stay holes in the file (sparse).
 */
export async function exportImage(config: Config, name: string, file: string, snapshot?: string): Promise<ImageReport> {
  return withLun(config, name, 'export', async (l) => {
    if (!l.info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${name}" does not exist in the store`);
    let info = l.info;
    let view: ObjectStore | undefined;
    if (snapshot !== undefined) {
      const catalog = await SnapshotCatalog.load(l.store, l.layout);
      const s = catalog.find(snapshot);
      if (!s) throw new CliError('CLI_ERR_USAGE', `LUN "${name}" has no snapshot named "${snapshot}"`);
      view = new SnapshotView(
        await lunReadStore(l.chunkStore, l.layout, l.info),
        l.layout,
        await SnapshotResolver.load(l.store, l.layout, catalog, s),
      );
      info = { ...info, sizeBytes: s.sizeBytes };
    }
    const volume: ChunkVolume = l.volume(info, { cacheBytes: 32 * MiB, ...(view ? { view } : {}) });
    const fh = await open(file, 'w').catch((e: Error) => {
      throw new CliError('CLI_ERR_IO', `cannot create ${file}: ${e.message}`);
    });
    try {
      await fh.truncate(info.sizeBytes);
      const started = Date.now();
      const mapped = await volume.allocation({ offset: 0, length: info.sizeBytes });
      const indexes: number[] = [];
      for (const e of mapped) {
        if (!e.mapped) continue;
        for (let o = e.offset; o < e.offset + e.length; o += MiB) indexes.push(Math.floor(o / MiB));
      }
      const total = Math.ceil(info.sizeBytes / MiB);
      const bar = new ProgressBar(`export ${name}`, 'MiB');
      let done = 0;
      let data = 0;
      await forEachParallel(indexes.length, PARALLEL, async (k) => {
        const offset = indexes[k] * MiB;
        const len = Math.min(MiB, info.sizeBytes - offset);
        const buf = await volume.read(offset, len);
        if (!isZero(buf)) {
          await fh.write(buf, 0, len, offset);
          data++;
        }
        bar.update(++done, indexes.length);
      });
      await fh.sync();
      bar.done();
      return { bytes: info.sizeBytes, dataChunks: data, holeChunks: total - data, seconds: (Date.now() - started) / 1000 };
    } finally {
      await fh.close();
    }
  });
}
