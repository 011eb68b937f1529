import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { isStorageError } from '../../src/storage/errors';
import { Journal, type JournalOptions } from '../../src/storage/journal/journal';
import type { RecordInput } from '../../src/storage/journal/segment-writer';
import type { HostIdentity } from '../../src/storage/lease-record';
import { systemClock } from '../../src/util/clock';
import { inTempDir } from '../lib/temp-dir';

const MiB = 1024 * 1024;
const LUN_A = 'aaaaaaaa-0000-0000-0000-000000000001';
const LUN_B = 'bbbbbbbb-0000-0000-0000-000000000002';
const HOLDER = 'fedcba98-7654-3210-fedc-ba9876543210';
const hex = (uuid: string): string => uuid.replaceAll('-', '');

const me = (over: Partial<HostIdentity> = {}): HostIdentity => ({
  host: 'host-a',
  bootId: 'boot-1',
  pid: 100,
  pidStart: '5000',
  isGone: () => false,
  ...over,
});

const write = (lun: string, chunk: number, fill: number, length = 64 * 1024): RecordInput => ({
  kind: 'write',
  lun,
  holder: HOLDER,
  chunk,
  offset: 0,
  length,
  data: Buffer.alloc(length, fill),
});

const options = (dir: string, over: Partial<JournalOptions> = {}): JournalOptions => ({
  dir,
  sizeBytes: 8 * MiB,
  segmentBytes: MiB,
  spaceTimeoutMs: 300,
  clock: systemClock,
  identity: me(),
  ...over,
});

const segmentFiles = async (dir: string): Promise<string[]> => (await fs.readdir(dir)).filter((n) => n.startsWith('seg-')).sort();

describe('the journal directory (issue 14)', () => {
  it('a missing directory, a file, and a directory locked by a live process are clear errors', async () => {
    await inTempDir(async (dir) => {
      await assert.rejects(Journal.open(options(path.join(dir, 'nope'))), (e: unknown) => {
        assert.ok(isStorageError(e) && e.code === 'STORE_ERR_JOURNAL_DIR' && /does not exist/.test(e.message));
        return true;
      });
      await fs.writeFile(path.join(dir, 'file'), '');
      await assert.rejects(Journal.open(options(path.join(dir, 'file'))), /is not a directory/);
      const first = await Journal.open(options(dir));
      await assert.rejects(Journal.open(options(dir, { identity: me({ pid: 200 }) })), (e: unknown) => {
        assert.ok(isStorageError(e) && e.code === 'STORE_ERR_JOURNAL_DIR');
        assert.match(e.message, /in use by pid 100 on host-a/);
        return true;
      });
      await first.close();
      const again = await Journal.open(options(dir, { identity: me({ pid: 200 }) }));
      await again.close();
    });
  });

  it('a lock left by a provably dead process of this machine is taken over (kill -9, then restart)', async () => {
    await inTempDir(async (dir) => {
      const dead = await Journal.open(options(dir));
      void dead; // never closed: the process died
      const next = await Journal.open(options(dir, { identity: me({ pid: 300, pidStart: '6000', isGone: (pid) => pid === 100 }) }));
      await next.close();
    });
  });

  it('records survive a restart, by LUN and in order, and numbering continues', async () => {
    await inTempDir(async (dir) => {
      const j = await Journal.open(options(dir));
      const seqs = await Promise.all([write(LUN_A, 1, 1), write(LUN_B, 1, 2), write(LUN_A, 2, 3)].map((r) => j.append(r)));
      assert.deepEqual(seqs, [1, 2, 3]);
      await j.close();
      const k = await Journal.open(options(dir));
      assert.deepEqual(
        (await k.readRecovered(LUN_A)).map((r) => [r.sequence, r.chunk, r.data[0]]),
        [
          [1, 1, 1],
          [3, 2, 3],
        ],
      );
      assert.deepEqual(
        k.recoveredFor(LUN_B).map((r) => r.sequence),
        [2],
      );
      assert.deepEqual([...k.recoveredLuns].sort(), [hex(LUN_A), hex(LUN_B)]);
      assert.equal(await k.append(write(LUN_A, 5, 5)), 4, 'sequence numbers continue');
      await k.close();
    });
  });

  it('segments rotate, and are deleted oldest first once none of their records is pending', async () => {
    await inTempDir(async (dir) => {
      const j = await Journal.open(options(dir));
      // 64 KiB records: 15 per 1 MiB segment. Chunk 0 in segment 1, chunk 1 in segment 2.
      for (let k = 0; k < 15; k++) await j.append(write(LUN_A, 0, k));
      for (let k = 0; k < 15; k++) await j.append(write(LUN_A, 1, k));
      await j.append(write(LUN_A, 2, 0));
      assert.equal((await segmentFiles(dir)).length, 3);
      j.retire(LUN_A, 1, Number.MAX_SAFE_INTEGER);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await segmentFiles(dir)).length, 3, 'segment 2 is done, but segment 1 before it is not: both stay');
      j.retire(LUN_A, 0, 10); // not all of chunk 0's records
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await segmentFiles(dir)).length, 3);
      j.retire(LUN_A, 0, 15);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(await segmentFiles(dir), ['seg-0000000000000003.log'], 'segments 1 and 2 are gone, the active one stays');
      assert.ok(j.usedBytes < MiB);
      await j.close();
    });
  });

  it('a full journal holds writers back, lets them go when uploads free room, and fails them retryably after the bound', async () => {
    await inTempDir(async (dir) => {
      const j = await Journal.open(options(dir, { sizeBytes: 3 * MiB, spaceTimeoutMs: 400 }));
      const len = 88 + 64 * 1024;
      for (let n = 0; j.usedBytes + len <= 3 * MiB; n++) await j.append(write(LUN_A, n, 1)); // 15 records per segment
      const t0 = Date.now();
      await assert.rejects(j.append(write(LUN_A, 99, 1)), { code: 'STORE_ERR_JOURNAL_FULL', kind: 'unavailable' });
      assert.ok(Date.now() - t0 >= 350, 'it waited for room first');
      const waiting = j.append(write(LUN_A, 100, 1));
      setTimeout(() => {
        for (let c = 0; c < 15; c++) j.retire(LUN_A, c, Number.MAX_SAFE_INTEGER);
      }, 100);
      assert.equal(typeof (await waiting), 'number', 'the held-back write went in once segment 1 was deleted');
      await j.close();
    });
  });

  it('after replay, the recovered segments go', async () => {
    await inTempDir(async (dir) => {
      const j = await Journal.open(options(dir));
      for (let k = 0; k < 20; k++) await j.append(write(k % 2 ? LUN_A : LUN_B, k, k));
      await j.close();
      const k = await Journal.open(options(dir));
      assert.equal((await segmentFiles(dir)).length, 3, 'two recovered segments and a new one');
      k.retireRecovered(LUN_A);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await segmentFiles(dir)).length, 3, "LUN B's records still pending");
      k.retireRecovered(LUN_B);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await segmentFiles(dir)).length, 1);
      assert.deepEqual(k.recoveredLuns, []);
      await k.close();
    });
  });

  it('a LUN given up with records not in S3 (its lease was taken): they become recovered records, settled without a restart and no longer pin the journal', async () => {
    await inTempDir(async (dir) => {
      const j = await Journal.open(options(dir));
      // 64 KiB records: 15 per 1 MiB segment. LUN A's in segment 1, LUN B's after.
      for (let k = 0; k < 15; k++) await j.append(write(LUN_A, k % 3, k));
      for (let k = 0; k < 16; k++) await j.append(write(LUN_B, k, k));
      for (let c = 0; c < 16; c++) j.retire(LUN_B, c, Number.MAX_SAFE_INTEGER);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await segmentFiles(dir)).length, 3, "LUN A's pending records keep segment 1, and every segment after it");
      assert.equal(j.uploadedBelow, 1);
      assert.equal(await j.abandon(LUN_A), 15);
      assert.ok(j.isClean(LUN_A), 'nothing of LUN A is pending any more');
      const recovered = j.recoveredFor(LUN_A);
      assert.deepEqual(
        recovered.map((r) => [r.sequence, r.chunk, r.holder]),
        Array.from({ length: 15 }, (_, k) => [k + 1, k % 3, hex(HOLDER)]),
      );
      assert.equal((await j.readRecovered(LUN_A))[14].data[0], 14, 'their data reads back');
      assert.equal(j.uploadedBelow, 1, 'they are still not in S3');
      assert.equal(j.dropRecovered(LUN_A, new Set([hex(HOLDER)])), 15);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await segmentFiles(dir)).length, 1, 'dropped: the segments go');
      assert.equal(j.uploadedBelow, j.nextSequence);
      await j.close();
    });
  });

  it('a torn tail is cut off at start; damage to an acknowledged record stops the start with file and byte', async () => {
    await inTempDir(async (dir) => {
      const j = await Journal.open(options(dir));
      for (let k = 0; k < 3; k++) await j.append(write(LUN_A, k, k));
      await j.close();
      const last = path.join(dir, (await segmentFiles(dir)).at(-1) as string);
      const good = (await fs.stat(last)).size;
      await fs.appendFile(last, Buffer.alloc(500, 0x53)); // a group that never finished
      const k = await Journal.open(options(dir));
      assert.equal(k.recoveredFor(LUN_A).length, 3);
      assert.equal((await fs.stat(last)).size, good, 'cut back to the last whole record');
      await k.append(write(LUN_A, 9, 9));
      await k.close();
      const first = path.join(dir, (await segmentFiles(dir))[0]);
      const buf = await fs.readFile(first);
      buf[100] ^= 0xff; // inside record 1; records 2 and 3 (later groups) follow
      await fs.writeFile(first, buf);
      await assert.rejects(Journal.open(options(dir)), (e: unknown) => {
        assert.ok(isStorageError(e) && e.code === 'STORE_ERR_JOURNAL_CORRUPT' && e.kind === 'data');
        assert.ok(e.message.includes(first) && /byte 0/.test(e.message) && /acknowledged/.test(e.message), e.message);
        return true;
      });
      await assert.rejects(Journal.open(options(dir)), { code: 'STORE_ERR_JOURNAL_CORRUPT' }, 'the failed start released its lock');
    });
  });
});
