import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { TargetProcess, TEST_IQN } from '../harness/target';
import { read16, write16 } from '../lib/cdb';
import { parseTokenInformation, populateTokenList, type Range, rrtiCdb, tokenCdb, writeUsingTokenList } from '../lib/odx';
import { inquiry } from './cdbs';
import { type Outcome, Peer, senseOf } from './peer';
import { windows } from './profiles';

/**
 * Windows' Offloaded Data Transfer between two disks of one target, with the CDBs classpnp
 * builds (Windows-driver-samples storage/class/classpnp/src/class.c): the VPD 8Fh probe of
 * `ClasspGetBlockDeviceTokenLimitsInfo`, one POPULATE TOKEN for the file's extents and its
 * RECEIVE ROD TOKEN INFORMATION (`ClasspServicePopulateTokenTransferRequest`), then WRITE
 * USING TOKEN commands of at most OPTIMAL TRANSFER COUNT blocks with BLOCK OFFSET INTO ROD
 * advancing (`ClasspServiceWriteUsingTokenTransferRequest`). IMMED is always 0 and list
 * identifiers are unique and increasing. Sources: docs/initiator-personalities.md.
 */

const MiB = 1024 * 1024;
const BS = 512;
const LUN1 = 0x0001_0000_0000_0000n;
/** classpnp's default CopyOffloadMaxTargetDuration: an offload write taking longer is cut short. */
const MAX_TARGET_DURATION_MS = 4_000;

/** A 256 MiB "file" on LUN 0: eight extents of 32 MiB, half on 1 MiB chunks, half 4 KiB off them (NTFS clusters). */
const SOURCE: readonly Range[] = [0, 7, 2, 9, 4, 11, 6, 13].map((slot, i): Range => [(slot * 32 * MiB + (i % 2) * 4096) / BS, (32 * MiB) / BS]);
/** Its copy on LUN 1: four extents of 48, 80, 40 and 88 MiB (one 4 KiB off the chunks), so commands span extents. */
const DESTINATION: readonly Range[] = [
  [(240 * MiB) / BS, (48 * MiB) / BS],
  [0, (80 * MiB) / BS],
  [(400 * MiB + 4096) / BS, (40 * MiB) / BS],
  [(96 * MiB) / BS, (88 * MiB) / BS],
];
const FILE_BYTES = 256 * MiB;

/** Runs `jobs` with at most `depth` in flight; every one must end GOOD. */
async function pipeline(jobs: ReadonlyArray<() => Promise<Outcome>>, depth = 8): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]();
        assert.equal(out[i].status, 0, `job ${i}: ${senseOf(out[i]).join('/')}`);
      }
    }),
  );
  return out;
}

/** The `extents` of `lun`, read with READ(16) 4 MiB at a time, hashed in file order. */
async function hashExtents(p: Peer, lun: bigint, extents: readonly Range[]): Promise<string> {
  const reads: Array<[bigint, number]> = [];
  for (const [lba, blocks] of extents) {
    for (let done = 0; done < blocks; done += (4 * MiB) / BS) reads.push([BigInt(lba) + BigInt(done), Math.min((4 * MiB) / BS, blocks - done)]);
  }
  const parts = await pipeline(
    reads.map(
      ([lba, n]) =>
        () =>
          p.exec(read16(lba, n), { read: n * BS, lun }, 30_000),
    ),
  );
  const h = createHash('sha256');
  for (const o of parts) h.update(o.data);
  return h.digest('hex');
}

/** Lines of the target's /metrics that start with `name` (diagnostics only). */
function metric(port: number, name: string): Promise<string[]> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve(body.split('\n').filter((l) => l.startsWith(name))));
      })
      .on('error', () => resolve([]));
  });
}

/** The destination ranges that take ROD blocks [from, from + count): classpnp's split of an offload write. */
function destinationSlice(from: number, count: number): Range[] {
  const out: Range[] = [];
  let skip = from;
  let left = count;
  for (const [lba, blocks] of DESTINATION) {
    if (left === 0) break;
    if (skip >= blocks) {
      skip -= blocks;
      continue;
    }
    const n = Math.min(blocks - skip, left);
    out.push([BigInt(lba) + BigInt(skip), n]);
    left -= n;
    skip = 0;
  }
  return out;
}

describe('Windows ODX personality: offload read and write between two LUNs (file store)', () => {
  const target = new TargetProcess({
    logLevel: 'info',
    lunsYaml: `      - { lun: 0, name: odxsrc, size: 512MiB }
      - { lun: 1, name: odxdst, size: 512MiB }`,
  });
  before(() => target.start());
  after(() => target.stop());

  it('VPD 8Fh as classpnp reads it; 256 MiB copied LUN 0 → LUN 1 with POPULATE TOKEN, RRTI and WRITE USING TOKEN; both read back equal', async (t) => {
    const p = await Peer.connect(target.port, windows());
    assert.equal(await p.login(TEST_IQN), 0);
    await p.execRetryUa(Buffer.from([0, 0, 0, 0, 0, 0]));
    await p.execRetryUa(Buffer.from([0, 0, 0, 0, 0, 0]), { lun: LUN1 });

    // Disk arrival: VPD 00h lists 8Fh; the first 8Fh descriptor is the Windows block device
    // token limits descriptor, DESCRIPTOR LENGTH 20h, PAGE LENGTH at least 24h.
    const pages = await p.exec(inquiry(255, 0x00), { read: 255 });
    assert.ok(pages.data.subarray(4).includes(0x8f), 'VPD 00h lists the Third-party Copy page');
    const vpd = await p.exec(inquiry(4096, 0x8f), { read: 4096 });
    assert.equal(vpd.status, 0);
    assert.ok(vpd.data.readUInt16BE(2) >= 0x24);
    assert.equal(vpd.data.readUInt16BE(4), 0x0000, 'BLOCK_DEVICE_TOKEN_LIMITS_DESCRIPTOR_TYPE_WINDOWS first');
    assert.equal(vpd.data.readUInt16BE(6), 0x20);
    const maxRanges = vpd.data.readUInt16BE(14);
    const maxTokenTransfer = Number(vpd.data.readBigUInt64BE(24));
    const optimal = Number(vpd.data.readBigUInt64BE(32));
    assert.ok(maxRanges >= SOURCE.length, `MaximumRangeDescriptors ${maxRanges}`);
    assert.ok(maxTokenTransfer >= FILE_BYTES / BS, 'one POPULATE TOKEN can cover the file');
    assert.ok(optimal > 0 && optimal <= maxTokenTransfer, 'OptimalTransferCount ≤ MaximumTokenTransferSize (classpnp asserts it)');

    // The file's data, written as a host would.
    const file = randomBytes(FILE_BYTES);
    const writes: Array<() => Promise<Outcome>> = [];
    let at = 0;
    for (const [lba, blocks] of SOURCE) {
      for (let done = 0; done < blocks; done += (4 * MiB) / BS) {
        const n = Math.min((4 * MiB) / BS, blocks - done);
        const data = file.subarray(at, at + n * BS);
        at += n * BS;
        writes.push(() => p.exec(write16(BigInt(lba) + BigInt(done), n), { write: data }, 30_000));
      }
    }
    await pipeline(writes);
    const want = createHash('sha256').update(file).digest('hex');

    // Offload read: one POPULATE TOKEN (IMMED 0, an explicit TTL, so it is bounded by
    // MaximumTokenTransferSize rather than OptimalTransferCount), then RRTI for the token.
    let listId = 0x1000;
    const ptList = populateTokenList(SOURCE, { timeout: 30 });
    const ptId = listId++;
    const pt = await p.exec(tokenCdb(0x10, ptId, ptList.length), { write: ptList }, 30_000);
    assert.deepEqual(senseOf(pt), [0, 0, 0, 0]);
    const rrti = await p.exec(rrtiCdb(ptId, 32 + 255 + 4 + 514), { read: 32 + 255 + 4 + 514 });
    assert.equal(rrti.status, 0);
    const info = parseTokenInformation(rrti.data);
    assert.equal(info.responseTo, 0x10);
    assert.equal(info.status, 0x01, 'OPERATION_COMPLETED_WITH_SUCCESS');
    assert.equal(info.units, 0xf1, 'TRANSFER_COUNT_UNITS_NUMBER_BLOCKS');
    assert.equal(info.transferCount, BigInt(FILE_BYTES / BS), 'the whole file is represented');
    assert.equal(info.segmentsProcessed, 0);
    assert.equal(info.descriptorsLength, 514, 'sizeof(BLOCK_DEVICE_TOKEN_DESCRIPTOR)');
    assert.equal(info.tokenIdentifier, 0);
    const token = info.token as Buffer;

    // Offload write: WRITE USING TOKEN commands of OptimalTransferCount blocks (at most
    // 256 MiB), each within classpnp's 4 s budget; GOOD needs no RRTI.
    const perCommand = Math.min(optimal, (256 * MiB) / BS);
    let commands = 0;
    for (let offset = 0; offset < FILE_BYTES / BS; offset += perCommand) {
      const ranges = destinationSlice(offset, Math.min(perCommand, FILE_BYTES / BS - offset));
      assert.ok(ranges.length <= maxRanges);
      const list = writeUsingTokenList(token, ranges, { offset });
      const t0 = performance.now();
      const wut = await p.exec(tokenCdb(0x11, listId++, list.length), { write: list, lun: LUN1 }, 30_000);
      const ms = performance.now() - t0;
      assert.deepEqual(senseOf(wut), [0, 0, 0, 0], `WRITE USING TOKEN at ROD block ${offset}`);
      assert.ok(ms < MAX_TARGET_DURATION_MS, `WRITE USING TOKEN of ${(perCommand * BS) / MiB} MiB took ${ms.toFixed(0)} ms`);
      commands++;
      t.diagnostic(`WRITE USING TOKEN ${commands}: ${ranges.length} ranges, ${((perCommand * BS) / MiB).toFixed(0)} MiB in ${ms.toFixed(0)} ms`);
    }
    t.diagnostic((await metric(target.metricsPort, 's3tgt_copy_offloaded_bytes_total')).join('; '));
    assert.equal(commands, Math.ceil(FILE_BYTES / BS / perCommand));

    assert.equal(await hashExtents(p, 0n, SOURCE), want, 'LUN 0 still holds the file');
    assert.equal(await hashExtents(p, LUN1, DESTINATION), want, 'LUN 1 holds the same bytes');
    assert.equal(p.rejects.length, 0);
    p.close();
  });

  it('a write to the file after the offload read cancels the token: WRITE USING TOKEN ends 05/23/08 (STATUS_INVALID_TOKEN) and RRTI reports it', async () => {
    const p = await Peer.connect(target.port, windows('node2', 1));
    assert.equal(await p.login(TEST_IQN), 0);
    await p.execRetryUa(Buffer.from([0, 0, 0, 0, 0, 0]));
    await p.execRetryUa(Buffer.from([0, 0, 0, 0, 0, 0]), { lun: LUN1 });
    const extent: Range = [(500 * MiB) / BS, (2 * MiB) / BS];
    const ptList = populateTokenList([extent], { timeout: 30 });
    assert.equal((await p.exec(tokenCdb(0x10, 7, ptList.length), { write: ptList })).status, 0);
    const token = parseTokenInformation((await p.exec(rrtiCdb(7), { read: 1024 })).data).token as Buffer;
    assert.equal((await p.exec(write16(BigInt(extent[0]) + 100n, 1), { write: randomBytes(BS) })).status, 0);
    const list = writeUsingTokenList(token, [[(500 * MiB) / BS, (2 * MiB) / BS]]);
    const wut = await p.exec(tokenCdb(0x11, 8, list.length), { write: list, lun: LUN1 });
    assert.deepEqual(senseOf(wut), [2, 0x5, 0x23, 0x08]);
    // classpnp sends no RRTI after STATUS_INVALID_TOKEN; one that does gets the same sense data.
    const status = parseTokenInformation((await p.exec(rrtiCdb(8), { read: 1024, lun: LUN1 })).data);
    assert.equal(status.status, 0x02);
    assert.deepEqual([status.sense[2] & 0x0f, status.sense[12], status.sense[13]], [0x5, 0x23, 0x08]);
    p.close();
  });
});
