import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { Outcome } from '../../src/scsi/command';
import { COMMANDS } from '../../src/scsi/command-table';
import { naa6 } from '../../src/scsi/commands/vpd';
import { LogicalUnit } from '../../src/scsi/logical-unit';
import { encodeLun } from '../../src/scsi/lun-address';
import type { ITNexus } from '../../src/scsi/nexus';
import { MAX_TOKENS } from '../../src/scsi/rod-tokens';
import { senseCodeOf } from '../../src/scsi/sense';
import { TaskAttribute } from '../../src/scsi/status';
import { ScsiTarget } from '../../src/scsi/target';
import { ChunkVolume, DEFAULT_VOLUME_OPTIONS } from '../../src/storage/chunk-volume';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import { parseTokenInformation, populateTokenList, type Range, rrtiCdb, tokenCdb, writeUsingTokenList, zeroRodToken } from '../lib/odx';
import { nexus } from '../lib/scsi-fixture';
import { VirtualScheduler } from '../lib/virtual-clock';

const MiB = 1024 * 1024;
const BS = 512;
const uuidOf = (lun: number): string => `${lun}0000000-0000-4000-8000-000000000000`;

const WIN = nexus('win');

/** LUN 0 and 1 (1 GiB, sparse) and 2 (64 MiB, read-only) over one memory store; ROD token time is virtual. */
class Fixture {
  readonly time = new VirtualScheduler();
  readonly target = new ScsiTarget('iqn.2026-11.test:t', this.time.clock());
  readonly lus: LogicalUnit[] = [];
  private tag = 1;

  constructor() {
    const store = new MemoryObjectStore();
    for (const lun of [0, 1, 2]) {
      const uuid = uuidOf(lun);
      const info = {
        name: `odx${lun}`,
        sizeBytes: lun === 2 ? 64 * MiB : 1024 * MiB,
        logicalBlockSize: BS,
        chunkSize: MiB,
        uuid,
        created: '',
      } as const;
      const volume = new ChunkVolume(store, new LunLayout('', info.name), info, { ...DEFAULT_VOLUME_OPTIONS, readOnly: lun === 2 });
      const lu = new LogicalUnit(lun, volume, { vendor: 'S3TGT', product: 'test', revision: '0001', uuid }, this.target);
      this.target.addLun(lu);
      this.lus.push(lu);
    }
  }

  async run(lun: number, cdb: Buffer, dataOut: Buffer = Buffer.alloc(0), n: ITNexus = WIN): Promise<Outcome> {
    const task = this.target.submit({
      nexus: n,
      lun: encodeLun(lun),
      cdb,
      tag: this.tag++,
      attribute: TaskAttribute.Simple,
      dataOutBufferSize: dataOut.length,
    });
    const out = await task.execute([dataOut.subarray(0, task.dataOutLength)]);
    assert.ok(out, 'not aborted');
    return out;
  }

  async ready(n: ITNexus = WIN): Promise<void> {
    for (const lu of this.lus) await this.run(lu.lun, Buffer.alloc(6), undefined, n);
  }

  /** POPULATE TOKEN then RECEIVE ROD TOKEN INFORMATION, as classpnp's offload read does. */
  async populate(lun: number, listId: number, ranges: readonly Range[], o: { timeout?: number } = {}): Promise<Buffer> {
    const list = populateTokenList(ranges, o);
    assert.equal(sense(await this.run(lun, tokenCdb(0x10, listId, list.length), list)), 'status 0');
    const info = parseTokenInformation((await this.run(lun, rrtiCdb(listId))).data as Buffer);
    assert.ok(info.token, 'the answer carries a token');
    return Buffer.from(info.token);
  }

  writeUsingToken(
    lun: number,
    listId: number,
    token: Buffer,
    ranges: readonly Range[],
    o: { offset?: number; deleteToken?: boolean } = {},
  ): Promise<Outcome> {
    const list = writeUsingTokenList(token, ranges, o);
    return this.run(lun, tokenCdb(0x11, listId, list.length), list);
  }

  async close(): Promise<void> {
    await Promise.all(this.lus.map((lu) => lu.volume.close()));
  }
}

function sense(o: Outcome): string {
  if (!o.sense) return `status ${o.status}`;
  const c = senseCodeOf(o.sense);
  return `${c.key.toString(16)}/${c.asc.toString(16).padStart(2, '0')}/${c.ascq.toString(16).padStart(2, '0')}`;
}

function write16(lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x8a;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

const inquiryVpd = (page: number): Buffer => Buffer.from([0x12, 0x01, page, 0x10, 0x00, 0x00]);
const zeros = (b: Buffer): boolean => b.every((x) => x === 0);

describe('ODX: VPD 8Fh, POPULATE TOKEN, WRITE USING TOKEN, RECEIVE ROD TOKEN INFORMATION', () => {
  const fx = new Fixture();
  after(() => fx.close());

  it('VPD 8Fh: Block Device ROD Token Limits first (length 20h, as classpnp requires), descriptors add up, the supported commands are the table', async () => {
    await fx.ready();
    const pages = (await fx.run(0, inquiryVpd(0x00))).data as Buffer;
    const codes = [...pages.subarray(4, 4 + pages.readUInt16BE(2))];
    assert.ok(codes.includes(0x8f), 'VPD 00h lists 8Fh');
    assert.deepEqual(
      codes,
      [...codes].sort((a, b) => a - b),
      'in ascending order',
    );
    const p = (await fx.run(0, inquiryVpd(0x8f))).data as Buffer;
    assert.equal(p[1], 0x8f);
    const pageLength = p.readUInt16BE(2);
    assert.equal(p.length, 4 + pageLength);
    const descriptors = new Map<number, Buffer>();
    const order: number[] = [];
    for (let at = 4; at < p.length; ) {
      const type = p.readUInt16BE(at);
      const len = p.readUInt16BE(at + 2);
      assert.equal((4 + len) % 4, 0, `descriptor ${type.toString(16)} is a multiple of 4 bytes`);
      descriptors.set(type, p.subarray(at, at + 4 + len));
      order.push(type);
      at += 4 + len;
      assert.ok(at <= p.length, 'descriptors stay inside PAGE LENGTH');
    }
    assert.equal(order[0], 0x0000, 'Block Device ROD Token Limits is the first descriptor');
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
    );
    for (const mandatory of [0x0001, 0x8001]) assert.ok(descriptors.has(mandatory), `descriptor ${mandatory.toString(16)}`);
    const bdrl = descriptors.get(0x0000) as Buffer;
    assert.equal(bdrl.readUInt16BE(2), 0x20, 'DESCRIPTOR LENGTH (VPD_PAGE_HEADER_SIZE + 20h = sizeof the Windows descriptor)');
    assert.equal(bdrl.readUInt16BE(10), 64, 'MAXIMUM RANGE DESCRIPTORS');
    assert.equal(bdrl.readUInt32BE(12), 600, 'MAXIMUM INACTIVITY TIMEOUT');
    assert.equal(bdrl.readUInt32BE(16), 60, 'DEFAULT INACTIVITY TIMEOUT');
    assert.equal(bdrl.readBigUInt64BE(20), BigInt((512 * MiB) / BS), 'MAXIMUM TOKEN TRANSFER SIZE in blocks');
    assert.equal(bdrl.readBigUInt64BE(28), BigInt((64 * MiB) / BS), 'OPTIMAL TRANSFER COUNT: 64 whole chunks');
    // Supported Commands: every listed (opcode, service action) is in the command table, and
    // every third-party copy command of the table is listed.
    const sc = descriptors.get(0x0001) as Buffer;
    const listed: string[] = [];
    for (let j = 5; j < 5 + sc[4]; ) {
      const op = sc[j];
      const n = sc[j + 1];
      for (const sa of sc.subarray(j + 2, j + 2 + n)) listed.push(`${op.toString(16)}/${sa.toString(16)}`);
      j += 2 + n;
    }
    const table = COMMANDS.filter((c) => c.def.opcode === 0x83 || c.def.opcode === 0x84).map(
      (c) => `${c.def.opcode.toString(16)}/${c.def.serviceAction?.toString(16)}`,
    );
    assert.deepEqual([...listed].sort(), [...table].sort());
    assert.ok(listed.includes('83/10') && listed.includes('83/11') && listed.includes('84/7'));
    const rodTypes = descriptors.get(0x0108) as Buffer;
    assert.equal(rodTypes.readUInt32BE(8), 0x00800001, 'our ROD type: point in time, change vulnerable');
    assert.equal(rodTypes[12] & 0x03, 0x03, 'made by POPULATE TOKEN and taken by WRITE USING TOKEN');
    assert.equal(rodTypes.readUInt32BE(8 + 64), 0xffff0001, 'the block device zero ROD token');
    // REPORT SUPPORTED OPERATION CODES, one command by opcode and service action.
    for (const sa of [0x10, 0x11]) {
      const c = Buffer.from([0xa3, 0x0c, 0x02, 0x83, 0, sa, 0, 0, 0x02, 0, 0, 0]);
      assert.equal(((await fx.run(0, c)).data as Buffer)[1] & 0x07, 0x03, `83h/${sa.toString(16)} is supported`);
    }
    const rrti = Buffer.from([0xa3, 0x0c, 0x02, 0x84, 0, 0x07, 0, 0, 0x02, 0, 0, 0]);
    assert.equal(((await fx.run(0, rrti)).data as Buffer)[1] & 0x07, 0x03);
  });

  it('POPULATE TOKEN + RECEIVE ROD TOKEN INFORMATION: a 514-byte ROD token descriptor naming LUN 0, reported once', async () => {
    const list = populateTokenList([
      [0, 8],
      [100, 16],
      [4096, 2048],
    ]);
    assert.equal(sense(await fx.run(0, tokenCdb(0x10, 0x1000, list.length), list)), 'status 0');
    const d = (await fx.run(0, rrtiCdb(0x1000))).data as Buffer;
    const info = parseTokenInformation(d);
    assert.equal(info.availableData, d.length - 4, 'AVAILABLE DATA');
    assert.equal(info.responseTo, 0x10, 'RESPONSE TO SERVICE ACTION: POPULATE TOKEN');
    assert.equal(info.status, 0x01, 'COPY OPERATION STATUS: completed without errors');
    assert.equal(info.completionStatus, 0x00);
    assert.equal(info.senseFieldLength, 0);
    assert.equal(info.units, 0xf1, 'TRANSFER COUNT UNITS: logical blocks');
    assert.equal(info.transferCount, 8n + 16n + 2048n);
    assert.equal(info.segmentsProcessed, 0);
    assert.equal(info.descriptorsLength, 514, 'ROD TOKEN DESCRIPTORS LENGTH');
    assert.equal(d.length, 32 + 4 + 514);
    assert.equal(info.tokenIdentifier, 0);
    const t = info.token as Buffer;
    assert.equal(t.readUInt32BE(0), 0x00800001, 'ROD TYPE');
    assert.equal(t.readUInt16BE(6), 0x01f8, 'ROD TOKEN LENGTH');
    assert.equal(t[16], 0xe4, 'CREATOR LOGICAL UNIT DESCRIPTOR: identification descriptor');
    assert.ok(t.subarray(24, 24 + t[23]).equals(naa6(uuidOf(0))), 'names LUN 0 by its NAA designator');
    assert.equal(t.readUIntBE(45, 3), BS, 'DISK BLOCK LENGTH');
    assert.equal(t.readBigUInt64BE(56), BigInt((8 + 16 + 2048) * BS), 'NUMBER OF BYTES REPRESENTED');
    assert.equal(t.readUInt32BE(96), BS, 'device type specific data: logical block length');
    // Held until read once; a second read finds no operation under that list identifier.
    assert.equal(sense(await fx.run(0, rrtiCdb(0x1000))), '5/24/00');
    // Two tokens of the same ranges differ (the random part).
    const again = await fx.populate(0, 0x1001, [[0, 8]]);
    const other = await fx.populate(0, 0x1002, [[0, 8]]);
    assert.ok(!again.equals(other));
  });

  it('a truncated RECEIVE ROD TOKEN INFORMATION keeps the results for a retry; another I_T nexus sees none', async () => {
    const list = populateTokenList([[0, 8]]);
    assert.equal(sense(await fx.run(0, tokenCdb(0x10, 0x1100, list.length), list)), 'status 0');
    const other = nexus('other');
    await fx.ready(other);
    assert.equal(sense(await fx.run(0, rrtiCdb(0x1100), undefined, other)), '5/24/00', "another nexus's list identifier");
    assert.equal(((await fx.run(0, rrtiCdb(0x1100, 32))).data as Buffer).length, 32);
    assert.equal(parseTokenInformation((await fx.run(0, rrtiCdb(0x1100))).data as Buffer).descriptorsLength, 514);
  });

  it('WRITE USING TOKEN copies across LUs byte for byte: several source and destination ranges, BLOCK OFFSET INTO ROD', async () => {
    const [a, b] = fx.lus;
    // Source ranges: 3 MiB at 1 MiB (chunk aligned), 40 blocks at block 9000 (unaligned), 2 MiB + 3 blocks at 20 MiB.
    const src: Range[] = [
      [MiB / BS, (3 * MiB) / BS],
      [9000, 40],
      [(20 * MiB) / BS, (2 * MiB) / BS + 3],
    ];
    const stream: Buffer[] = [];
    for (const [lba, blocks] of src) {
      const data = randomBytes(blocks * BS);
      await a.volume.write(Number(lba) * BS, data);
      stream.push(data);
    }
    const rod = Buffer.concat(stream);
    const token = await fx.populate(0, 0x2000, src);
    // Destination: skip the first 7 blocks of the ROD; three ranges of LUN 1 that cut the
    // source ranges at other places.
    const skip = 7;
    const dst: Range[] = [
      [(40 * MiB) / BS, (2 * MiB) / BS],
      [11, (MiB + 20 * BS) / BS],
      [(30 * MiB) / BS + 1, 100],
    ];
    assert.equal(sense(await fx.writeUsingToken(1, 0x2001, token, dst, { offset: skip })), 'status 0');
    let at = skip * BS;
    for (const [lba, blocks] of dst) {
      const got = await b.volume.read(Number(lba) * BS, blocks * BS);
      assert.ok(got.equals(rod.subarray(at, at + blocks * BS)), `destination range at LBA ${lba} holds the ROD from byte ${at}`);
      at += blocks * BS;
      assert.ok(zeros(await b.volume.read(Number(lba) * BS - BS, BS)), 'the block before is untouched');
      assert.ok(zeros(await b.volume.read(Number(lba) * BS + blocks * BS, BS)), 'the block after is untouched');
    }
    // The rest of the ROD in a second command, as Windows continues an offload write.
    const rest = rod.length / BS - at / BS;
    assert.equal(sense(await fx.writeUsingToken(1, 0x2002, token, [[(50 * MiB) / BS, rest]], { offset: at / BS })), 'status 0');
    assert.ok((await b.volume.read(50 * MiB, rest * BS)).equals(rod.subarray(at)));
    // A successful WRITE USING TOKEN's results: written blocks, no token descriptors.
    const info = parseTokenInformation((await fx.run(1, rrtiCdb(0x2002))).data as Buffer);
    assert.equal(info.responseTo, 0x11);
    assert.equal(info.status, 0x01);
    assert.equal(info.transferCount, BigInt(rest));
    assert.equal(info.descriptorsLength, 0);
  });

  it('a write to the source range after POPULATE TOKEN cancels the token: 05/23/08, destination unchanged; a write elsewhere does not', async () => {
    const [a, b] = fx.lus;
    await a.volume.write(2 * MiB, randomBytes(MiB));
    const token = await fx.populate(0, 0x3000, [[(2 * MiB) / BS, MiB / BS]]);
    // A write next to the range, not in it: the token stays valid.
    assert.equal(sense(await fx.run(0, write16((3 * MiB) / BS, 8), randomBytes(8 * BS))), 'status 0');
    assert.equal(sense(await fx.writeUsingToken(1, 0x3001, token, [[0, 8]])), 'status 0');
    assert.ok(!zeros(await b.volume.read(0, 8 * BS)), 'that copy happened');
    // One block inside the range, by WRITE(16) from another initiator.
    const other = nexus('writer');
    await fx.ready(other);
    assert.equal(sense(await fx.run(0, write16((2 * MiB) / BS + 100, 1), randomBytes(BS), other)), 'status 0');
    const before = Buffer.from(await b.volume.read(8 * MiB, MiB));
    const o = await fx.writeUsingToken(1, 0x3002, token, [[(8 * MiB) / BS, MiB / BS]]);
    assert.equal(sense(o), '5/23/08', 'INVALID TOKEN OPERATION, TOKEN CANCELLED');
    assert.ok((await b.volume.read(8 * MiB, MiB)).equals(before), 'nothing was written');
    // The failed operation's results carry its sense data.
    const info = parseTokenInformation((await fx.run(1, rrtiCdb(0x3002))).data as Buffer);
    assert.equal(info.status, 0x02, 'completed with errors');
    assert.equal(info.completionStatus, 0x02, 'CHECK CONDITION');
    const c = senseCodeOf(info.sense);
    assert.deepEqual([c.key, c.asc, c.ascq], [0x5, 0x23, 0x08]);
  });

  it('UNMAP, WRITE SAME and EXTENDED COPY into the source range cancel tokens too', async () => {
    const list = (lba: number): Buffer => {
      const d = Buffer.alloc(24);
      d.writeUInt16BE(22, 0);
      d.writeUInt16BE(16, 2);
      d.writeBigUInt64BE(BigInt(lba), 8);
      d.writeUInt32BE(1, 16);
      return d;
    };
    const t1 = await fx.populate(0, 0x3100, [[10_000, 10]]);
    assert.equal(sense(await fx.run(0, Buffer.from([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0]), list(10_005))), 'status 0');
    assert.equal(sense(await fx.writeUsingToken(1, 0x3101, t1, [[0, 10]])), '5/23/08', 'after UNMAP');
    const t2 = await fx.populate(0, 0x3102, [[11_000, 10]]);
    const ws = Buffer.alloc(16);
    ws[0] = 0x93;
    ws.writeBigUInt64BE(11_009n, 2);
    ws.writeUInt32BE(4, 10);
    assert.equal(sense(await fx.run(0, ws, Buffer.alloc(BS, 0x5a))), 'status 0');
    assert.equal(sense(await fx.writeUsingToken(1, 0x3103, t2, [[0, 10]])), '5/23/08', 'after WRITE SAME');
    // EXTENDED COPY(LID1) from LUN 1 into the token's range of LUN 0.
    const t3 = await fx.populate(0, 0x3104, [[12_000, 10]]);
    const cscd = (lun: number): Buffer => {
      const d = Buffer.alloc(32);
      d[0] = 0xe4;
      const naa = naa6(uuidOf(lun));
      d[4] = 0x01;
      d[5] = 0x03;
      d[7] = naa.length;
      naa.copy(d, 8);
      d.writeUIntBE(BS, 29, 3);
      return d;
    };
    const seg = Buffer.alloc(28);
    seg[0] = 0x02;
    seg.writeUInt16BE(24, 2);
    seg.writeUInt16BE(1, 4); // source: CSCD 1 (LUN 1)
    seg.writeUInt16BE(0, 6); // destination: CSCD 0 (LUN 0)
    seg.writeUInt16BE(2, 10);
    seg.writeBigUInt64BE(0n, 12);
    seg.writeBigUInt64BE(12_003n, 20);
    const h = Buffer.alloc(16);
    h[1] = 3 << 3; // no list identifier
    h.writeUInt16BE(64, 2);
    h.writeUInt32BE(28, 8);
    const xcopy = Buffer.concat([h, cscd(0), cscd(1), seg]);
    const xcdb = Buffer.alloc(16);
    xcdb[0] = 0x83;
    xcdb.writeUInt32BE(xcopy.length, 10);
    assert.equal(sense(await fx.run(0, xcdb, xcopy)), 'status 0');
    assert.equal(sense(await fx.writeUsingToken(1, 0x3105, t3, [[0, 10]])), '5/23/08', 'after EXTENDED COPY');
  });

  it('COMPARE AND WRITE cancels a token only when it writes; a write while WRITE USING TOKEN copies fails the copy', async () => {
    const [a] = fx.lus;
    const block = randomBytes(BS);
    await a.volume.write(13_000 * BS, block);
    const token = await fx.populate(0, 0x3200, [[13_000, 8]]);
    const caw = Buffer.alloc(16);
    caw[0] = 0x89;
    caw.writeBigUInt64BE(13_000n, 2);
    caw[13] = 1;
    const miscompare = Buffer.concat([randomBytes(BS), randomBytes(BS)]);
    assert.equal(sense(await fx.run(0, caw, miscompare)), 'e/1d/00', 'MISCOMPARE: nothing written');
    assert.equal(sense(await fx.writeUsingToken(1, 0x3201, token, [[0, 8]])), 'status 0', 'the token survives a miscompare');
    assert.equal(sense(await fx.run(0, caw, Buffer.concat([block, randomBytes(BS)]))), 'status 0');
    assert.equal(sense(await fx.writeUsingToken(1, 0x3202, token, [[0, 8]])), '5/23/08', 'a COMPARE AND WRITE that wrote cancels it');
    // The copy reads the source after the write started: it fails rather than mix old and new data.
    await a.volume.write(100 * MiB, randomBytes(32 * MiB));
    const big = await fx.populate(0, 0x3203, [[(100 * MiB) / BS, (32 * MiB) / BS]]);
    const copying = fx.writeUsingToken(1, 0x3204, big, [[(200 * MiB) / BS, (32 * MiB) / BS]]);
    assert.equal(sense(await fx.run(0, write16((100 * MiB) / BS + 5, 1), randomBytes(BS))), 'status 0');
    assert.equal(sense(await copying), '5/23/08');
    const info = parseTokenInformation((await fx.run(1, rrtiCdb(0x3204))).data as Buffer);
    assert.equal(info.status, 0x02, 'completed with errors');
  });

  it(`the table keeps at most ${MAX_TOKENS} tokens: the oldest live one is then unknown, the newest still works`, async () => {
    const first = await fx.populate(0, 0x3300, [[0, 8]]);
    let last = first;
    for (let i = 1; i <= MAX_TOKENS; i++) last = await fx.populate(0, 0x3300 + i, [[0, 8]]);
    assert.ok(fx.target.rodTokens.size <= MAX_TOKENS, `${fx.target.rodTokens.size} tokens kept`);
    assert.equal(sense(await fx.writeUsingToken(1, 0x3000_0000, first, [[0, 8]])), '5/23/04');
    assert.equal(sense(await fx.writeUsingToken(1, 0x3000_0001, last, [[0, 8]])), 'status 0');
  });

  it('a token expires after its inactivity timeout without use; each use re-arms it; > the maximum is refused', async () => {
    const token = await fx.populate(0, 0x4000, [[0, 16]], { timeout: 5 });
    await fx.time.advance(4_000);
    assert.equal(sense(await fx.writeUsingToken(1, 0x4001, token, [[0, 8]])), 'status 0', 'used within 5 s');
    await fx.time.advance(4_000);
    assert.equal(sense(await fx.writeUsingToken(1, 0x4002, token, [[8, 8]], { offset: 8 })), 'status 0', 'the use re-armed it');
    await fx.time.advance(5_001);
    assert.equal(sense(await fx.writeUsingToken(1, 0x4003, token, [[0, 8]])), '5/23/07', 'INVALID TOKEN OPERATION, TOKEN EXPIRED');
    const tooLong = populateTokenList([[0, 8]], { timeout: 601 });
    const o = await fx.run(0, tokenCdb(0x10, 0x4004, tooLong.length), tooLong);
    assert.equal(sense(o), '5/26/00');
    assert.equal(o.sense?.readUInt16BE(16), 4, 'field pointer: INACTIVITY TIMEOUT');
    // 0 takes the default (60 s): still valid after 59 s, expired after 61 s.
    const byDefault = await fx.populate(0, 0x4005, [[0, 8]]);
    await fx.time.advance(59_000);
    assert.equal(sense(await fx.writeUsingToken(1, 0x4006, byDefault, [[0, 8]])), 'status 0');
    await fx.time.advance(61_000);
    assert.equal(sense(await fx.writeUsingToken(1, 0x4007, byDefault, [[0, 8]])), '5/23/07');
  });

  it('a list identifier in use by a running operation of the same I_T nexus is OPERATION IN PROGRESS; an ended one is reused', async () => {
    const [a] = fx.lus;
    await a.volume.write(0, randomBytes(32 * MiB));
    const token = await fx.populate(0, 0x5000, [[0, (32 * MiB) / BS]]);
    const list = writeUsingTokenList(token, [[(32 * MiB) / BS, (32 * MiB) / BS]]);
    const running = fx.run(1, tokenCdb(0x11, 0x5001, list.length), list);
    const dup = populateTokenList([[0, 8]]);
    assert.equal(sense(await fx.run(1, tokenCdb(0x10, 0x5001, dup.length), dup)), '5/00/16', 'OPERATION IN PROGRESS');
    // Another nexus may use the same number.
    const other = nexus('dup');
    await fx.ready(other);
    assert.equal(sense(await fx.run(1, tokenCdb(0x10, 0x5001, dup.length), dup, other)), 'status 0');
    assert.equal(sense(await running), 'status 0');
    assert.equal(sense(await fx.run(1, tokenCdb(0x10, 0x5001, dup.length), dup)), 'status 0', 'reused once the copy ended');
    assert.equal(parseTokenInformation((await fx.run(1, rrtiCdb(0x5001))).data as Buffer).responseTo, 0x10, 'the results are the new command’s');
  });

  it('IMMED=1 is refused for both commands (we complete synchronously, as Windows asks)', async () => {
    const pt = populateTokenList([[0, 8]], { immed: true });
    const o = await fx.run(0, tokenCdb(0x10, 0x6000, pt.length), pt);
    assert.equal(sense(o), '5/26/00');
    assert.deepEqual([o.sense?.[15], o.sense?.readUInt16BE(16)], [0x88, 2], 'field pointer: byte 2 bit 0');
    const token = await fx.populate(0, 0x6001, [[0, 8]]);
    const wut = writeUsingTokenList(token, [[0, 8]], { immed: true });
    assert.equal(sense(await fx.run(1, tokenCdb(0x11, 0x6002, wut.length), wut)), '5/26/00');
  });

  it('ranges longer than the ROD past BLOCK OFFSET INTO ROD: COPY TARGET DEVICE DATA UNDERRUN, nothing written; an offset past the end is an invalid field', async () => {
    const [, b] = fx.lus;
    await fx.lus[0].volume.write(0, randomBytes(16 * BS));
    const token = await fx.populate(0, 0x7000, [[0, 16]]);
    const before = Buffer.from(await b.volume.read(60 * MiB, 32 * BS));
    assert.equal(sense(await fx.writeUsingToken(1, 0x7001, token, [[(60 * MiB) / BS, 17]])), '5/0d/04');
    assert.equal(sense(await fx.writeUsingToken(1, 0x7002, token, [[(60 * MiB) / BS, 10]], { offset: 7 })), '5/0d/04');
    assert.ok((await b.volume.read(60 * MiB, 32 * BS)).equals(before), 'nothing was written');
    const o = await fx.writeUsingToken(1, 0x7003, token, [[(60 * MiB) / BS, 1]], { offset: 16 });
    assert.equal(sense(o), '5/26/00');
    assert.equal(o.sense?.readUInt16BE(16), 8, 'field pointer: BLOCK OFFSET INTO ROD');
    assert.equal(sense(await fx.writeUsingToken(1, 0x7004, token, [[(60 * MiB) / BS, 9]], { offset: 7 })), 'status 0', 'exactly what is left');
  });

  it('an unknown token (512 random bytes) is 05/23/04; a token deleted by DEL_TKN is 05/23/09', async () => {
    assert.equal(sense(await fx.writeUsingToken(1, 0x8000, randomBytes(512), [[0, 8]])), '5/23/04', 'TOKEN UNKNOWN');
    const token = await fx.populate(0, 0x8001, [[0, 16]]);
    const forged = Buffer.from(token);
    forged[511] ^= 0x01;
    assert.equal(sense(await fx.writeUsingToken(1, 0x8002, forged, [[0, 8]])), '5/23/04', 'one bit off is unknown');
    assert.equal(sense(await fx.writeUsingToken(1, 0x8003, token, [[0, 8]], { deleteToken: true })), 'status 0');
    assert.equal(sense(await fx.writeUsingToken(1, 0x8004, token, [[0, 8]])), '5/23/09', 'TOKEN DELETED');
  });

  it('DATA PROTECT on a read-only destination, before anything is read', async () => {
    const token = await fx.populate(0, 0x9000, [[0, 8]]);
    assert.equal(sense(await fx.writeUsingToken(2, 0x9001, token, [[0, 8]])), '7/27/00');
  });

  it('the block device zero ROD token writes zeros', async () => {
    const [, b] = fx.lus;
    await b.volume.write(4 * MiB, randomBytes(3 * MiB));
    assert.equal(sense(await fx.writeUsingToken(1, 0xa000, zeroRodToken(), [[(4 * MiB) / BS + 1, (2 * MiB) / BS]])), 'status 0');
    assert.ok(zeros(await b.volume.read(4 * MiB + BS, 2 * MiB)), 'zeros over the range');
    assert.ok(!zeros(await b.volume.read(4 * MiB, BS)), 'the block before keeps its data');
    assert.ok(!zeros(await b.volume.read(6 * MiB + BS, BS)), 'the block after keeps its data');
  });

  it('range checks: LBA OUT OF RANGE, too many descriptors, overlapping descriptors, a foreign ROD type, more than the maximum token transfer size', async () => {
    const end = (1024 * MiB) / BS;
    const past = populateTokenList([[end - 4, 8]]);
    assert.equal(sense(await fx.run(0, tokenCdb(0x10, 0xb000, past.length), past)), '5/21/00');
    const wrap = populateTokenList([[0xffffffffffffffffn, 2]]);
    assert.equal(sense(await fx.run(0, tokenCdb(0x10, 0xb001, wrap.length), wrap)), '5/21/00', 'LBA + blocks never wraps');
    const many = populateTokenList(Array.from({ length: 65 }, (_, i): Range => [i * 8, 8]));
    const o = await fx.run(0, tokenCdb(0x10, 0xb002, many.length), many);
    assert.equal(sense(o), '5/26/08', 'TOO MANY SEGMENT DESCRIPTORS');
    assert.equal(o.sense?.readUInt16BE(16), 16 + 64 * 16, 'points at the 65th descriptor');
    const sixtyFour = populateTokenList(Array.from({ length: 64 }, (_, i): Range => [i * 8, 8]));
    assert.equal(sense(await fx.run(0, tokenCdb(0x10, 0xb003, sixtyFour.length), sixtyFour)), 'status 0', '64 is the maximum');
    const overlapping = populateTokenList([
      [0, 8],
      [7, 8],
    ]);
    assert.equal(sense(await fx.run(0, tokenCdb(0x10, 0xb004, overlapping.length), overlapping)), '5/26/00');
    const foreign = populateTokenList([[0, 8]], { rodType: 0x00010000 });
    assert.equal(sense(await fx.run(0, tokenCdb(0x10, 0xb005, foreign.length), foreign)), '5/26/00', 'access upon reference is not ours');
    const pit = populateTokenList([[0, 8]], { rodType: 0x00800000 });
    assert.equal(sense(await fx.run(0, tokenCdb(0x10, 0xb006, pit.length), pit)), 'status 0', 'point in time, default');
    // MAXIMUM TOKEN TRANSFER SIZE: 512 MiB, over two descriptors.
    const max = (512 * MiB) / BS;
    const atMax = populateTokenList([
      [0, max / 2],
      [max, max / 2],
    ]);
    assert.equal(sense(await fx.run(0, tokenCdb(0x10, 0xb007, atMax.length), atMax)), 'status 0');
    const overMax = populateTokenList([
      [0, max / 2],
      [max, max / 2 + 1],
    ]);
    const over = await fx.run(0, tokenCdb(0x10, 0xb008, overMax.length), overMax);
    assert.equal(sense(over), '5/26/00');
    assert.equal(over.sense?.readUInt16BE(16), 14, 'field pointer: the range descriptor list length');
    const truncated = populateTokenList([
      [0, 8],
      [16, 8],
    ]).subarray(0, 16 + 24);
    assert.equal(sense(await fx.run(0, tokenCdb(0x10, 0xb009, truncated.length), truncated)), '5/1a/00', 'a cut descriptor');
  });

  it('a WRITE USING TOKEN onto the data of its own token (same LU) is refused before anything is written', async () => {
    const token = await fx.populate(0, 0xc000, [[1000, 16]]);
    assert.equal(sense(await fx.writeUsingToken(0, 0xc001, token, [[1008, 16]])), '5/26/00');
    assert.equal(sense(await fx.writeUsingToken(0, 0xc002, token, [[2000, 16]])), 'status 0', 'elsewhere on the same LU');
  });

  it('a WRITE USING TOKEN aborted by a LUN reset stops between pieces; RRTI reports it ended with errors', async () => {
    const [a] = fx.lus;
    await a.volume.write(300 * MiB, randomBytes(32 * MiB));
    const src = Array.from({ length: 8 }, (_, i): Range => [(300 * MiB + i * 4 * MiB) / BS, (4 * MiB) / BS]);
    const token = await fx.populate(0, 0xe000, src);
    const list = writeUsingTokenList(token, [[(300 * MiB) / BS, (32 * MiB) / BS]]);
    const task = fx.target.submit({
      nexus: WIN,
      lun: encodeLun(1),
      cdb: tokenCdb(0x11, 0xe001, list.length),
      tag: 0xe001,
      attribute: TaskAttribute.Simple,
      dataOutBufferSize: list.length,
    });
    const copying = task.execute([list]);
    assert.equal(await fx.target.manage('lun-reset', WIN, encodeLun(1), 0xe002), 'complete');
    assert.equal(await copying, null, 'an aborted task has no status');
    await fx.ready();
    const info = parseTokenInformation((await fx.run(1, rrtiCdb(0xe001))).data as Buffer);
    assert.equal(info.status, 0x02, 'completed with errors');
    assert.equal(info.transferCount, BigInt((4 * MiB) / BS), 'the piece under way when the reset came, and no more');
  });

  it('a token is unknown once its LU is removed; a LUN reset leaves tokens alone', async () => {
    const token = await fx.populate(0, 0xd000, [[0, 8]]);
    const reset = await fx.target.manage('lun-reset', WIN, encodeLun(0), 0);
    assert.equal(reset, 'complete');
    await fx.ready();
    assert.equal(sense(await fx.writeUsingToken(1, 0xd001, token, [[0, 8]])), 'status 0', 'valid after LUN RESET');
    const before = fx.target.rodTokens.size;
    fx.target.removeLun(0);
    assert.ok(fx.target.rodTokens.size < before, 'its tokens are dropped');
    await fx.ready();
    assert.equal(sense(await fx.writeUsingToken(1, 0xd002, token, [[0, 8]])), '5/23/04');
    fx.target.addLun(fx.lus[0]);
  });
});
