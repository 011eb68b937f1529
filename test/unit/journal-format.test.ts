import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { isStorageError } from '../../src/storage/errors';
import { decodeRecord, encodeHeader, HEADER_SIZE, type JournalRecord } from '../../src/storage/journal/record';
import { scanSegment } from '../../src/storage/journal/segment-scan';
import { type CommitStats, type RecordInput, SegmentWriter } from '../../src/storage/journal/segment-writer';
import { systemClock } from '../../src/util/clock';

const LUN = '0123456789abcdef0123456789abcdef';
const HOLDER = 'fedcba98-7654-3210-fedc-ba9876543210';
/** The holder as records read back. */
const H = 'fedcba9876543210fedcba9876543210';

const write = (chunk: number, offset: number, data: Buffer): RecordInput & { readonly data: Buffer } => ({
  kind: 'write',
  lun: LUN,
  holder: HOLDER,
  chunk,
  offset,
  length: data.length,
  data,
});

async function withSegment<T>(fn: (file: string, fh: fs.FileHandle) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 's3tgt-journal-'));
  const file = path.join(dir, 'seg-0000000000000001.log');
  const fh = await fs.open(file, 'w+');
  try {
    return await fn(file, fh);
  } finally {
    await fh.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const writer = (fh: fs.FileHandle, commits: CommitStats[] = [], maxGroupBytes = 8 * 1024 * 1024): SegmentWriter =>
  new SegmentWriter(fh, 0, { clock: systemClock, sequence: 1, group: 1, maxGroupBytes, onCommit: (s) => commits.push(s) });

/** Offsets of the records in a scanned file, in order. */
function offsets(buf: Buffer): number[] {
  const out: number[] = [];
  for (let pos = 0; pos < buf.length; ) {
    const r = decodeRecord(buf, pos);
    assert.ok('record' in r);
    out.push(pos);
    pos = r.end;
  }
  return out;
}

describe('journal records and segments (issue 14)', () => {
  it('records round-trip through a segment: data, numbering, commit groups, and a clean tail', async () => {
    await withSegment(async (file, fh) => {
      const w = writer(fh);
      const a = randomBytes(4096);
      const b = randomBytes(512);
      assert.equal(await w.append(write(3, 8192, a)), 1);
      assert.equal(await w.append({ kind: 'discard', lun: LUN, holder: HOLDER, chunk: 9, offset: 0, length: 1 << 20, data: Buffer.alloc(0) }), 2);
      assert.equal(await w.append(write(2 ** 40, 0, b)), 3);
      const scan = scanSegment(await fs.readFile(file));
      assert.equal(scan.tail, 'clean');
      assert.equal(scan.end, w.size);
      assert.deepEqual(
        scan.records.map((r) => [r.kind, r.chunk, r.offset, r.length, r.sequence, r.group, r.holder, r.lun]),
        [
          ['write', 3, 8192, 4096, 1, 1, H, LUN],
          ['discard', 9, 0, 1 << 20, 2, 2, H, LUN],
          ['write', 2 ** 40, 0, 512, 3, 3, H, LUN],
        ],
      );
      assert.ok(scan.records[0].data.equals(a) && scan.records[2].data.equals(b));
    });
  });

  it('group commit: writes that arrive during an fsync share the next one', async () => {
    await withSegment(async (file, fh) => {
      const commits: CommitStats[] = [];
      const w = writer(fh, commits);
      const seqs = await Promise.all(Array.from({ length: 50 }, (_, k) => w.append(write(k, 0, Buffer.alloc(4096, k)))));
      assert.deepEqual(
        seqs,
        Array.from({ length: 50 }, (_, k) => k + 1),
        'consecutive sequence numbers, in arrival order',
      );
      assert.equal(commits.length, 2, 'the first record alone, then every record that arrived meanwhile');
      assert.deepEqual(
        commits.map((c) => c.records),
        [1, 49],
      );
      const scan = scanSegment(await fs.readFile(file));
      assert.equal(scan.tail, 'clean');
      assert.deepEqual(scan.records.map((r) => [r.group, r.indexInGroup, r.groupSize]).slice(0, 3), [
        [1, 0, 1],
        [2, 0, 49],
        [2, 1, 49],
      ]);
    });
  });

  it('a group is at most maxGroupBytes (one record more if a single record is larger)', async () => {
    await withSegment(async (_file, fh) => {
      const commits: CommitStats[] = [];
      const w = writer(fh, commits, 3 * (HEADER_SIZE + 4096));
      await Promise.all(Array.from({ length: 10 }, (_, k) => w.append(write(k, 0, Buffer.alloc(4096)))));
      assert.deepEqual(
        commits.map((c) => c.records),
        [1, 3, 3, 3],
      );
    });
  });

  it('a crash in the middle of the last group is a torn tail: every earlier group is kept, the append position is where it starts', async () => {
    await withSegment(async (file, fh) => {
      const w = writer(fh);
      // Records 2-4 arrive while group 1 is being committed: they form group 2.
      const first = w.append(write(0, 0, Buffer.alloc(4096, 1)));
      await Promise.all([first, ...[1, 2, 3].map((k) => w.append(write(k, 0, Buffer.alloc(4096, k))))]);
      const buf = await fs.readFile(file);
      const at = offsets(buf);
      // Cut inside record 3 (group 2): records 2 and 3 of the group are on disk, 3 is torn.
      const cut = scanSegment(buf.subarray(0, at[2] + 100));
      assert.equal(cut.tail, 'torn');
      assert.equal(cut.end, at[2]);
      assert.deepEqual(
        cut.records.map((r) => r.sequence),
        [1, 2],
      );
      assert.equal(cut.damage?.why, 'short');
      // Record 2 damaged, record 3 of the same (unacknowledged) group intact: still torn.
      const flipped = Buffer.from(buf);
      flipped[at[1] + HEADER_SIZE + 10] ^= 0xff;
      const torn = scanSegment(flipped);
      assert.equal(torn.tail, 'torn');
      assert.equal(torn.damage?.why, 'crc');
      assert.equal(torn.damage?.next?.sequence, 3);
      assert.deepEqual(
        torn.records.map((r) => r.sequence),
        [1],
      );
    });
  });

  it('damage followed by a later group is corruption of an acknowledged record: reported, never skipped', async () => {
    await withSegment(async (file, fh) => {
      const w = writer(fh);
      for (let k = 0; k < 4; k++) await w.append(write(k, 0, Buffer.alloc(4096, k)));
      const buf = await fs.readFile(file);
      const at = offsets(buf);
      buf[at[1] + 20] ^= 0x01; // a header bit of record 2 (group 2); groups 3 and 4 follow
      const scan = scanSegment(buf);
      assert.equal(scan.tail, 'corrupt');
      assert.equal(scan.end, at[1]);
      assert.equal(scan.damage?.offset, at[1]);
      assert.equal(scan.damage?.laterGroup, 3);
      assert.deepEqual(
        scan.records.map((r) => r.sequence),
        [1],
      );
    });
  });

  it('a record inside the data of a torn record does not count as a later group', async () => {
    await withSegment(async (file, fh) => {
      const w = writer(fh);
      await w.append(write(0, 0, Buffer.alloc(4096, 1)));
      // A guest's data that happens to hold a valid journal record of a much later group.
      const inner: JournalRecord = { ...write(5, 0, Buffer.alloc(64, 5)), sequence: 1, group: 99, indexInGroup: 0, groupSize: 1 };
      const payload = Buffer.alloc(4096);
      Buffer.concat([encodeHeader(inner), inner.data]).copy(payload, 512);
      await w.append(write(1, 0, payload));
      const buf = await fs.readFile(file);
      const cut = buf.subarray(0, buf.length - 8); // the second group is torn
      const scan = scanSegment(cut);
      assert.equal(scan.tail, 'torn', 'the embedded record (sequence 1, group 99) is not evidence of a later group');
    });
  });

  it('a failed fsync fails its group and every later append with a retryable journal error', async () => {
    let syncs = 0;
    const fh = {
      writev: async (bufs: Buffer[]) => ({ bytesWritten: bufs.reduce((n, b) => n + b.length, 0), buffers: bufs }),
      write: async () => ({ bytesWritten: 0 }),
      datasync: async () => {
        syncs++;
        if (syncs === 2) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      },
    } as unknown as fs.FileHandle;
    const w = writer(fh);
    assert.equal(await w.append(write(0, 0, Buffer.alloc(512))), 1);
    const failed = await Promise.allSettled([w.append(write(1, 0, Buffer.alloc(512))), w.append(write(2, 0, Buffer.alloc(512)))]);
    for (const f of failed) assert.ok(f.status === 'rejected' && isStorageError(f.reason) && f.reason.code === 'STORE_ERR_JOURNAL_IO');
    await assert.rejects(w.append(write(3, 0, Buffer.alloc(512))), { code: 'STORE_ERR_JOURNAL_IO', kind: 'unavailable' });
    assert.ok(w.broken);
  });

  it('the decoder names what is wrong: short, magic, version, kind, length, crc', () => {
    const r: JournalRecord = { ...write(1, 0, Buffer.alloc(16, 3)), sequence: 1, group: 1, indexInGroup: 0, groupSize: 1 };
    const good = Buffer.concat([encodeHeader(r), r.data]);
    const bad = (at: number, v: number): Buffer => {
      const b = Buffer.from(good);
      b[at] = v;
      return b;
    };
    const why = (b: Buffer): string => {
      const d = decodeRecord(b, 0);
      return 'unreadable' in d ? d.unreadable : 'ok';
    };
    assert.equal(why(good), 'ok');
    assert.equal(why(good.subarray(0, 40)), 'short');
    assert.equal(why(good.subarray(0, good.length - 1)), 'short');
    assert.equal(why(bad(0, 0)), 'magic');
    assert.equal(why(bad(4, 9)), 'version');
    assert.equal(why(bad(6, 9)), 'kind');
    assert.equal(why(bad(8, 0)), 'length');
    assert.equal(why(bad(HEADER_SIZE + 3, 0)), 'crc');
    assert.throws(() => encodeHeader({ ...r, lun: 'not-a-uuid' }), RangeError);
    assert.throws(() => encodeHeader({ ...r, length: 17 }), RangeError);
  });
});
