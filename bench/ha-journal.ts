import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClusterPair } from '../test/harness/cluster';
import type { Rgw } from '../test/harness/rgw';
import { s3Target } from '../test/harness/s3-target';
import { TEST_IQN } from '../test/harness/target';
import { type TimedWrites, timedWrites } from './lib/pipeline';

export interface HaJournalRow {
  readonly pattern: 'random-4k' | 'sequential-64k';
  /** One server, its journal on local disk only. */
  readonly alone: TimedWrites;
  /** Node a of a pair: every commit group also fsynced by node b before the acknowledgement. */
  readonly replicated: TimedWrites;
}

const CACHE_MIB = 64;

const luns = `      - lun: 0
        name: ha0
        store: s3
        size: 1GiB
        preferred: a
        cache: { size: ${CACHE_MIB}MiB, mode: journal, flushDelay: 200ms }`;

/**
 * What synchronous journal replication costs (docs/ha.md, "Journal replication"): a journal
 * LUN on one server against the same LUN on node a of an HA pair, whose every commit group is
 * fsynced by node b too before the write is acknowledged. Same RGW, same workloads as the
 * cache-mode rows (journal.ts), both nodes on this machine (the link is loopback: this is
 * the CPU and fsync cost, not a network's).
 */
export async function haJournalBench(rgw: Rgw, opts: { seconds: number }): Promise<HaJournalRow[]> {
  const rows: HaJournalRow[] = [];
  for (const pattern of ['random-4k', 'sequential-64k'] as const) {
    const load = { pattern, qd: pattern === 'random-4k' ? 32 : 16, spanBytes: 4 * CACHE_MIB * 1048576, seconds: opts.seconds };
    const aloneBucket = `hajbench-alone-${pattern}-${Date.now()}`;
    await rgw.createBucket(aloneBucket);
    const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-hajbench-'));
    const single = s3Target(rgw, {
      bucket: aloneBucket,
      size: '1GiB',
      cache: `{ size: ${CACHE_MIB}MiB, mode: journal, flushDelay: 200ms }`,
      // The pair's journals are the same (test/harness/cluster.ts): 64 MiB, uploads after 2 s.
      extraYaml: `journal: { dir: ${dir}, size: 64MiB, uploadDelay: 2s }`,
      lease: '{ ttl: 20s, renewInterval: 3s }',
      logLevel: 'warn',
    });
    await single.start();
    let alone: TimedWrites;
    try {
      alone = await timedWrites(single.port, TEST_IQN, load);
    } finally {
      await single.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
    const pairBucket = `hajbench-pair-${pattern}-${Date.now()}`;
    await rgw.createBucket(pairBucket);
    const pair = new ClusterPair(rgw, {
      bucket: pairBucket,
      journal: true,
      lunsYaml: luns,
      lease: '{ ttl: 20s, renewInterval: 3s, margin: 5s }',
      logLevel: 'warn',
    });
    let replicated: TimedWrites;
    try {
      await pair.up();
      replicated = await timedWrites(pair.a.port, TEST_IQN, load);
    } finally {
      await pair.down();
    }
    rows.push({ pattern, alone, replicated });
  }
  return rows;
}
