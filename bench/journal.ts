import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FaultProxy } from '../test/harness/fault-proxy';
import type { Rgw } from '../test/harness/rgw';
import { s3Target } from '../test/harness/s3-target';
import { TEST_IQN } from '../test/harness/target';
import { type TimedWrites, timedWrites } from './lib/pipeline';

export type WriteMode = 'write-through' | 'write-back' | 'journal';

export interface JournalBenchRow {
  readonly latencyMs: number;
  readonly pattern: 'random-4k' | 'sequential-64k';
  readonly byMode: Readonly<Record<WriteMode, TimedWrites>>;
  /** Journal bytes not yet in S3 when the journal run ended (uploads lag by up to journal.uploadDelay). */
  readonly journalBacklogMiB: number;
}

/** The RAM cache of every LUN here; the writes span four times it. */
const CACHE_MIB = 64;

/**
 * Writes on an S3 LUN in each cache mode, one after the other on the same RGW in one run:
 * write-through (WCE=0, acknowledged once in S3), write-back (WCE=1, acknowledged in RAM: the
 * memory LUN) and journal (WCE=0, acknowledged once fsynced in the local journal, a directory
 * under the OS temp dir). 4 KiB random at QD32 and 64 KiB sequential at QD16, over four times
 * the RAM cache, for `seconds` each; with `latencyMs` through the latency proxy.
 */
export async function journalBench(rgw: Rgw, opts: { latencyMs: number; seconds: number }): Promise<JournalBenchRow[]> {
  const proxy = opts.latencyMs > 0 ? new FaultProxy(rgw.port) : undefined;
  await proxy?.start();
  proxy?.set({ latencyMs: opts.latencyMs });
  const rows: JournalBenchRow[] = [];
  try {
    for (const pattern of ['random-4k', 'sequential-64k'] as const) {
      const byMode: Partial<Record<WriteMode, TimedWrites>> = {};
      let journalBacklogMiB = 0;
      for (const mode of ['write-through', 'write-back', 'journal'] as const) {
        const bucket = `jbench-${opts.latencyMs}-${pattern}-${mode}-${Date.now()}`;
        await rgw.createBucket(bucket);
        const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-jbench-'));
        const target = s3Target(rgw, {
          bucket,
          endpoint: proxy?.endpoint ?? rgw.endpoint,
          size: '1GiB',
          cache: `{ size: ${CACHE_MIB}MiB, mode: ${mode}, flushDelay: 200ms }`,
          extraYaml: mode === 'journal' ? `journal: { dir: ${dir}, size: 8GiB }` : '',
          lease: '{ ttl: 20s, renewInterval: 3s }',
          logLevel: 'warn',
        });
        await target.start();
        try {
          byMode[mode] = await timedWrites(target.port, TEST_IQN, {
            pattern,
            qd: pattern === 'random-4k' ? 32 : 16,
            spanBytes: 4 * CACHE_MIB * 1048576,
            seconds: opts.seconds,
          });
          if (mode === 'journal') journalBacklogMiB = (await target.metric('s3tgt_journal_backlog_bytes')) / 1048576;
        } finally {
          // SIGKILL: what is measured is the acknowledged writes, not the drain afterwards.
          await target.stop('SIGKILL');
          rmSync(dir, { recursive: true, force: true });
        }
      }
      rows.push({ latencyMs: opts.latencyMs, pattern, byMode: byMode as Record<WriteMode, TimedWrites>, journalBacklogMiB });
    }
  } finally {
    await proxy?.stop();
  }
  return rows;
}
