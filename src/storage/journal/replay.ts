import { invariant } from '../../util/invariant';
import type { Volume } from '../volume';
import { type JournalRecord, uuidHex } from './record';

export interface ReplayResult {
  readonly records: number;
  readonly bytesWritten: number;
  readonly bytesDiscarded: number;
  /** Wall time of the replay (0 when measured by nobody). */
  readonly seconds?: number;
}

/**
 * Applies a LUN's recovered records to its volume in sequence order, then makes them durable
 * (SYNCHRONIZE CACHE). The journal holds a suffix of the LUN's writes, and S3 holds each chunk
 * as of some point inside or after that suffix's start; writing the suffix again, in order per
 * chunk, on top gives every block its latest acknowledged content. So replay is idempotent: one that is
 * interrupted (kill -9) simply runs again. Only a replay the lease chain allows may run
 * (replay-policy.ts); the caller retires the records once this has returned.
 */
export async function replayInto(volume: Volume, records: readonly JournalRecord[]): Promise<ReplayResult> {
  const cs = volume.info.chunkSize;
  const lun = uuidHex(volume.info.uuid);
  let bytesWritten = 0;
  let bytesDiscarded = 0;
  let last = 0;
  for (const r of records) {
    invariant(uuidHex(r.lun) === lun, () => `replay of LUN ${lun} got a record of ${r.lun}`);
    invariant(r.sequence > last, () => `replay out of order: ${r.sequence} after ${last}`);
    last = r.sequence;
  }
  // Records of different chunks commute: applied chunk by chunk (each chunk's in sequence
  // order, a stable sort), every chunk is loaded into the cache once, not once per record.
  for (const r of [...records].sort((a, b) => a.chunk - b.chunk)) {
    const offset = r.chunk * cs + r.offset;
    if (r.kind === 'write') {
      await volume.write(offset, r.data);
      bytesWritten += r.length;
    } else {
      await volume.discard([{ offset, length: r.length }]);
      bytesDiscarded += r.length;
    }
  }
  await volume.flush();
  return { records: records.length, bytesWritten, bytesDiscarded };
}
