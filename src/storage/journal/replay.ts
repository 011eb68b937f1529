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
export async function replayInto(
  volume: Volume,
  /** All the records, or one chunk's records at a time (Journal.recoveredChunks). */
  source: readonly JournalRecord[] | AsyncIterable<readonly JournalRecord[]>,
): Promise<ReplayResult> {
  const cs = volume.info.chunkSize;
  const lun = uuidHex(volume.info.uuid);
  let records = 0;
  let bytesWritten = 0;
  let bytesDiscarded = 0;
  for await (const chunk of byChunk(source)) {
    let last = 0;
    for (const r of chunk) {
      invariant(uuidHex(r.lun) === lun, () => `replay of LUN ${lun} got a record of ${r.lun}`);
      invariant(r.sequence > last && r.chunk === chunk[0].chunk, () => `replay out of order: ${r.sequence} after ${last}`);
      last = r.sequence;
      const offset = r.chunk * cs + r.offset;
      if (r.kind === 'write') {
        await volume.write(offset, r.data);
        bytesWritten += r.length;
      } else {
        await volume.discard([{ offset, length: r.length }]);
        bytesDiscarded += r.length;
      }
      records++;
    }
  }
  await volume.flush();
  return { records, bytesWritten, bytesDiscarded };
}

/**
 * Records of different chunks commute: applied chunk by chunk (each chunk's in sequence
 * order), every chunk is loaded into the cache once, not once per record.
 */
async function* byChunk(source: readonly JournalRecord[] | AsyncIterable<readonly JournalRecord[]>): AsyncGenerator<readonly JournalRecord[]> {
  if (!Array.isArray(source)) {
    yield* source as AsyncIterable<readonly JournalRecord[]>;
    return;
  }
  const groups = new Map<number, JournalRecord[]>();
  for (const r of source as readonly JournalRecord[]) {
    const g = groups.get(r.chunk) ?? [];
    g.push(r);
    groups.set(r.chunk, g);
  }
  yield* groups.values();
}
