import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { Outcome } from '../../src/scsi/command';
import { naa6 } from '../../src/scsi/commands/vpd';
import { LogicalUnit } from '../../src/scsi/logical-unit';
import { encodeLun } from '../../src/scsi/lun-address';
import type { ITNexus } from '../../src/scsi/nexus';
import { senseCodeOf } from '../../src/scsi/sense';
import { TaskAttribute } from '../../src/scsi/status';
import { ScsiTarget } from '../../src/scsi/target';
import { ChunkVolume, DEFAULT_VOLUME_OPTIONS } from '../../src/storage/chunk-volume';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';

const MiB = 1024 * 1024;
/** Distinct in the leading digits: the NAA designator keeps the first 100 bits of the UUID. */
const uuidOf = (lun: number): string => `${lun}0000000-0000-4000-8000-000000000000`;
const BS = 512;

const NEXUS: ITNexus = {
  id: 'iqn.2026-11.test:xc,i,0x000000000001|iqn.2026-11.test:t,t,0x0001',
  initiatorPort: 'iqn.2026-11.test:xc,i,0x000000000001',
  initiatorName: 'iqn.2026-11.test:xc',
  targetPort: 'iqn.2026-11.test:t,t,0x0001',
  relativeTargetPortId: 1,
  transportId: Buffer.from('iqn.2026-11.test:xc'),
};

/** A target with LUN 0 and 1 (LUN 2 read-only), each a 64 MiB ChunkVolume over one memory store. */
class Fixture {
  readonly target = new ScsiTarget('iqn.2026-11.test:t');
  readonly lus: LogicalUnit[] = [];
  private tag = 1;

  constructor() {
    const store = new MemoryObjectStore();
    for (const lun of [0, 1, 2]) {
      const uuid = uuidOf(lun);
      const info = { name: `xc${lun}`, sizeBytes: 64 * MiB, logicalBlockSize: BS, chunkSize: MiB, uuid, created: '' } as const;
      const volume = new ChunkVolume(store, new LunLayout('', info.name), info, { ...DEFAULT_VOLUME_OPTIONS, readOnly: lun === 2 });
      const lu = new LogicalUnit(lun, volume, { vendor: 'S3TGT', product: 'test', revision: '0001', uuid }, this.target);
      this.target.addLun(lu);
      this.lus.push(lu);
    }
  }

  async run(lun: number, cdb: Buffer, dataOut: Buffer = Buffer.alloc(0)): Promise<Outcome> {
    const task = this.target.submit({
      nexus: NEXUS,
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

  /** Clears the power-on unit attentions. */
  async ready(): Promise<void> {
    for (const lu of this.lus) await this.run(lu.lun, Buffer.alloc(6));
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

/** Identification CSCD descriptor (E4h) with the NAA designator of `uuid`. */
function cscd(uuid: string, type = 0xe4): Buffer {
  const d = Buffer.alloc(32);
  d[0] = type;
  const naa = naa6(uuid);
  d[4] = 0x01; // CODE SET binary
  d[5] = 0x03; // ASSOCIATION LU, DESIGNATOR TYPE NAA
  d[7] = naa.length;
  naa.copy(d, 8);
  d.writeUIntBE(BS, 29, 3); // DISK BLOCK LENGTH
  return d;
}

/** Block to block segment descriptor (02h). */
function segment(src: number, dst: number, blocks: number, srcLba: bigint, dstLba: bigint, type = 0x02): Buffer {
  const d = Buffer.alloc(28);
  d[0] = type;
  d.writeUInt16BE(24, 2);
  d.writeUInt16BE(src, 4);
  d.writeUInt16BE(dst, 6);
  d.writeUInt16BE(blocks, 10);
  d.writeBigUInt64BE(srcLba, 12);
  d.writeBigUInt64BE(dstLba, 20);
  return d;
}

function parameterList(listId: number, usage: number, cscds: Buffer[], segments: Buffer[]): Buffer {
  const h = Buffer.alloc(16);
  h[0] = listId;
  h[1] = usage << 3;
  const c = Buffer.concat(cscds);
  const s = Buffer.concat(segments);
  h.writeUInt16BE(c.length, 2);
  h.writeUInt32BE(s.length, 8);
  return Buffer.concat([h, c, s]);
}

function xcopyCdb(length: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x83;
  c.writeUInt32BE(length, 10);
  return c;
}

function receiveCdb(serviceAction: number, listId: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x84;
  c[1] = serviceAction;
  c[2] = listId;
  c.writeUInt32BE(1024, 10);
  return c;
}

describe('EXTENDED COPY(LID1) and RECEIVE COPY RESULTS', () => {
  const fx = new Fixture();
  after(() => fx.close());

  it('copies the segment from one LU to another and nothing else; COPY STATUS reports it', async () => {
    await fx.ready();
    const [a, b] = fx.lus;
    const data = randomBytes(3 * MiB);
    await a.volume.write(MiB, data);
    const list = parameterList(7, 0, [cscd(uuidOf(0)), cscd(uuidOf(1))], [segment(0, 1, (3 * MiB) / BS, BigInt(MiB / BS), 100n)]);
    assert.equal(sense(await fx.run(0, xcopyCdb(list.length), list)), 'status 0');
    assert.ok((await b.volume.read(100 * BS, 3 * MiB)).equals(data), 'destination holds the source bytes');
    assert.ok(
      (await b.volume.read(99 * BS, BS)).every((x) => x === 0),
      'the block before is untouched',
    );
    assert.ok(
      (await b.volume.read(100 * BS + 3 * MiB, BS)).every((x) => x === 0),
      'the block after is untouched',
    );
    const status = await fx.run(0, receiveCdb(0x00, 7));
    assert.equal(status.status, 0);
    const d = status.data as Buffer;
    assert.equal(d.readUInt32BE(0), 8, 'AVAILABLE DATA');
    assert.equal(d[4], 0x01, 'COPY MANAGER STATUS: completed without errors');
    assert.equal(d.readUInt16BE(5), 1, 'SEGMENTS PROCESSED');
    assert.equal(d.readUInt32BE(8), 3 * MiB, 'TRANSFER COUNT in bytes');
    assert.equal(sense(await fx.run(0, receiveCdb(0x00, 8))), '5/24/00', 'no copy with list identifier 8');
  });

  it('an overlapping copy within one LU larger than one piece behaves as if the source was read first', async () => {
    const [a] = fx.lus;
    const data = randomBytes(20 * MiB);
    await a.volume.write(8 * MiB, data);
    // 20 MiB moved 1 MiB up: three pieces, each overlapping the next piece's source.
    const list = parameterList(0, 3, [cscd(uuidOf(0))], [segment(0, 0, (20 * MiB) / BS, BigInt((8 * MiB) / BS), BigInt((9 * MiB) / BS))]);
    assert.equal(sense(await fx.run(0, xcopyCdb(list.length), list)), 'status 0');
    assert.ok((await a.volume.read(9 * MiB, 20 * MiB)).equals(data));
  });

  it('unsupported descriptor type codes are ILLEGAL REQUEST 26/07 and 26/09 with a field pointer', async () => {
    const badCscd = parameterList(1, 0, [cscd(uuidOf(0), 0xe0)], [segment(0, 0, 1, 0n, 1n)]);
    const o = await fx.run(0, xcopyCdb(badCscd.length), badCscd);
    assert.equal(sense(o), '5/26/07');
    assert.equal(o.sense?.[15], 0x80, 'SKSV, field in the parameter list');
    assert.equal(o.sense?.readUInt16BE(16), 16, 'the first CSCD descriptor');
    const badSegment = parameterList(1, 0, [cscd(uuidOf(0))], [segment(0, 0, 1, 0n, 1n, 0x03)]);
    assert.equal(sense(await fx.run(0, xcopyCdb(badSegment.length), badSegment)), '5/26/09');
  });

  it('checks lengths and counts against the operating parameters', async () => {
    const op = (await fx.run(0, receiveCdb(0x03, 0))).data as Buffer;
    const maxCscd = op.readUInt16BE(8);
    const maxSegments = op.readUInt16BE(10);
    assert.deepEqual([...op.subarray(44, 44 + op[43])], [0x02, 0xe4], 'implemented descriptor type codes');
    const many = parameterList(
      1,
      0,
      [cscd(uuidOf(0))],
      Array.from({ length: maxSegments + 1 }, () => segment(0, 0, 1, 0n, 1n)),
    );
    assert.equal(sense(await fx.run(0, xcopyCdb(many.length), many)), '5/26/08');
    const cscds = parameterList(
      1,
      0,
      Array.from({ length: maxCscd + 1 }, () => cscd(uuidOf(0))),
      [segment(0, 0, 1, 0n, 1n)],
    );
    assert.equal(sense(await fx.run(0, xcopyCdb(cscds.length), cscds)), '5/26/06');
    const ok = parameterList(1, 0, [cscd(uuidOf(0))], [segment(0, 0, 1, 0n, 1n)]);
    assert.equal(sense(await fx.run(0, xcopyCdb(ok.length - 1), ok.subarray(0, ok.length - 1))), '5/1a/00', 'truncated segment');
    const reserved = Buffer.from(ok);
    reserved[1] = 1 << 3; // LIST ID USAGE 01b is reserved
    assert.equal(sense(await fx.run(0, xcopyCdb(reserved.length), reserved)), '5/26/00');
  });

  it('a CSCD that names no LU, a missing index or a range past the end abort the copy; write protection holds', async () => {
    const unknown = parameterList(1, 0, [cscd(uuidOf(0)), cscd(uuidOf(9))], [segment(0, 1, 1, 0n, 0n)]);
    assert.equal(sense(await fx.run(0, xcopyCdb(unknown.length), unknown)), 'a/08/04');
    const index = parameterList(1, 0, [cscd(uuidOf(0))], [segment(0, 1, 1, 0n, 0n)]);
    assert.equal(sense(await fx.run(0, xcopyCdb(index.length), index)), 'a/08/04');
    const end = BigInt((64 * MiB) / BS);
    const past = parameterList(1, 0, [cscd(uuidOf(0)), cscd(uuidOf(1))], [segment(0, 1, 2, 0n, end - 1n)]);
    const o = await fx.run(0, xcopyCdb(past.length), past);
    assert.equal(sense(o), 'a/00/00');
    assert.equal(o.sense?.readUInt16BE(16), 16 + 64 + 20, 'segment pointer to the DESTINATION LBA');
    const wrap = parameterList(1, 0, [cscd(uuidOf(0))], [segment(0, 0, 2, 0xffffffffffffffffn, 0n)]);
    assert.equal(sense(await fx.run(0, xcopyCdb(wrap.length), wrap)), 'a/00/00', 'LBA + blocks never wraps');
    const ro = parameterList(1, 0, [cscd(uuidOf(0)), cscd(uuidOf(2))], [segment(0, 1, 1, 0n, 0n)]);
    assert.equal(sense(await fx.run(0, xcopyCdb(ro.length), ro)), '7/27/00');
    const status = (await fx.run(0, receiveCdb(0x00, 1))).data as Buffer;
    assert.equal(status[4], 0x02, 'the last one completed with errors');
  });
});
