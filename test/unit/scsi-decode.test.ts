import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_TRANSFER_BYTES } from '../../src/scsi/commands/rw-decode';
import { cdb10, cdb16, MiB, nexus, ScsiFixture, sense } from '../lib/scsi-fixture';

const I1 = nexus('one');
const LBA_OOB = '5/21/00';
const INVALID_CDB = '5/24/00';

describe('CDB decoding edge cases, per command family (SBC-4 / SPC-5)', () => {
  const fx = new ScsiFixture(64 * MiB);
  const cap = BigInt((64 * MiB) / 512);
  before(() => fx.ready(I1));
  after(() => fx.close());

  describe('READ/WRITE/VERIFY: one overflow-safe range check', () => {
    for (const op of [0x88, 0x8a, 0x8f]) {
      it(`opcode 0x${op.toString(16)}: LBA + length wrapping 2^64 is LBA OUT OF RANGE`, async () => {
        assert.equal(sense(await fx.run(I1, cdb16(op, 0xffffffffffffffffn, 2), { dataOut: Buffer.alloc(1024) })), LBA_OOB);
        assert.equal(sense(await fx.run(I1, cdb16(op, cap - 1n, 2), { dataOut: Buffer.alloc(1024) })), LBA_OOB);
        assert.equal(sense(await fx.run(I1, cdb16(op, cap, 0))), 'status 0', 'zero blocks at the end is fine');
        assert.equal(sense(await fx.run(I1, cdb16(op, cap + 1n, 0))), LBA_OOB, 'zero blocks past the end is not');
      });
    }
    it('READ(10) with transfer length 0 moves no data and succeeds', async () => {
      const r = await fx.run(I1, cdb10(0x28, 0, 0));
      assert.equal(r.status, 0);
      assert.equal(r.data?.length ?? 0, 0);
    });
    it('READ(6) with transfer length 0 means 256 blocks', async () => {
      const r = await fx.run(I1, [0x08, 0, 0, 0, 0, 0]);
      assert.equal(r.data?.length, 256 * 512);
    });
    it('RDPROTECT/WRPROTECT set (no protection information) is INVALID FIELD IN CDB with a field pointer', async () => {
      const r = await fx.run(I1, cdb10(0x28, 0, 1, 0x20));
      assert.equal(sense(r), INVALID_CDB);
      assert.equal(r.sense?.[15], 0x80 | 0x40 | 0x08 | 7, 'SKSV, C/D, BPV, bit 7 (the top bit of RDPROTECT)');
      assert.equal(r.sense?.readUInt16BE(16), 1, 'byte 1');
    });
    it('NACA in the CONTROL byte is refused (no ACA support)', async () => {
      const c = cdb10(0x28, 0, 1);
      c[9] = 0x04;
      assert.equal(sense(await fx.run(I1, c)), INVALID_CDB);
    });
    it('a transfer above MAXIMUM TRANSFER LENGTH is refused', async () => {
      assert.equal(sense(await fx.run(I1, cdb16(0x88, 0n, MAX_TRANSFER_BYTES / 512 + 1))), INVALID_CDB);
    });
    it('VERIFY with BYTCHK=10b is refused, BYTCHK=11b compares one block against each', async () => {
      assert.equal(sense(await fx.run(I1, cdb10(0x2f, 0, 1, 0x04))), INVALID_CDB);
      await fx.run(I1, cdb10(0x2a, 100, 4), { dataOut: Buffer.alloc(2048, 0x33) });
      const ok = await fx.run(I1, cdb10(0x2f, 100, 4, 0x06), { dataOut: Buffer.alloc(512, 0x33) });
      assert.equal(ok.dataOutLength, 512);
      assert.equal(ok.status, 0);
      const bad = await fx.run(I1, cdb10(0x2f, 100, 4, 0x06), { dataOut: Buffer.alloc(512, 0x34) });
      assert.equal(sense(bad), 'e/1d/00');
    });
    it('a write offered less Data-Out than described writes only the whole blocks offered', async () => {
      await fx.run(I1, cdb10(0x2a, 200, 2), { dataOut: Buffer.alloc(1024, 0x61) });
      const r = await fx.run(I1, cdb10(0x2a, 200, 2), { dataOut: Buffer.alloc(700, 0x62), edtl: 700 });
      assert.equal(r.status, 0);
      assert.equal(r.dataOutLength, 512);
      assert.equal(r.transferLength, 1024, 'SPDTL stays for the residual');
      const back = (await fx.run(I1, cdb10(0x28, 200, 2))).data as Buffer;
      assert.ok(back.subarray(0, 512).every((b) => b === 0x62));
      assert.ok(back.subarray(512).every((b) => b === 0x61));
    });
  });

  describe('allocation length truncation (SPC-5 §4.2.5.6)', () => {
    it('INQUIRY returns at most ALLOCATION LENGTH bytes; a page code without EVPD is refused', async () => {
      assert.equal((await fx.run(I1, [0x12, 0, 0, 0, 5, 0])).data?.length, 5);
      assert.equal((await fx.run(I1, [0x12, 1, 0xb0, 0, 10, 0])).data?.length, 10);
      assert.equal(sense(await fx.run(I1, [0x12, 0, 0x80, 0, 255, 0])), INVALID_CDB);
      assert.equal(sense(await fx.run(I1, [0x12, 2, 0, 0, 255, 0])), INVALID_CDB, 'CMDDT');
      assert.equal(sense(await fx.run(I1, [0x12, 1, 0x42, 0, 255, 0])), INVALID_CDB, 'unknown VPD page');
    });
    it('READ CAPACITY(16) and MODE SENSE honour the allocation length', async () => {
      const rc = await fx.run(I1, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0]);
      assert.equal(rc.data?.length, 12);
      const ms = await fx.run(I1, [0x1a, 0, 0x3f, 0, 4, 0]);
      assert.equal(ms.data?.length, 4);
    });
    it('REPORT LUNS below 16 bytes of allocation length is an error, at 16 it lists LUN 0', async () => {
      assert.equal(sense(await fx.run(I1, [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0])), INVALID_CDB);
      const r = await fx.run(I1, [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0]);
      assert.deepEqual([...(r.data as Buffer)], [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    });
  });

  describe('unknown commands and service actions', () => {
    it('an unknown opcode is INVALID COMMAND OPERATION CODE', async () => {
      assert.equal(sense(await fx.run(I1, [0xc7, 0, 0, 0, 0, 0])), '5/20/00');
    });
    it('an unknown service action of a known opcode is INVALID FIELD IN CDB', async () => {
      assert.equal(sense(await fx.run(I1, [0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0])), INVALID_CDB);
      assert.equal(sense(await fx.run(I1, [0x5e, 0x07, 0, 0, 0, 0, 0, 0, 64, 0])), INVALID_CDB);
    });
    it('a command to a LUN that does not exist is LOGICAL UNIT NOT SUPPORTED; INQUIRY gets PQ 011b', async () => {
      assert.equal(sense(await fx.run(I1, [0, 0, 0, 0, 0, 0], { lun: 7 })), '5/25/00');
      const inq = await fx.run(I1, [0x12, 0, 0, 0, 36, 0], { lun: 7 });
      assert.equal(inq.data?.[0], 0x7f);
    });
  });

  describe('COMPARE AND WRITE, WRITE SAME, PERSISTENT RESERVE OUT', () => {
    it('COMPARE AND WRITE: a Data-Out whose size differs from 2 x NUMBER OF BLOCKS is refused', async () => {
      const c = Buffer.alloc(16);
      c[0] = 0x89;
      c[13] = 2;
      assert.equal(sense(await fx.run(I1, c, { dataOut: Buffer.alloc(4096), edtl: 4096 })), INVALID_CDB, 'too much');
      assert.equal(sense(await fx.run(I1, c, { dataOut: Buffer.alloc(1024), edtl: 1024 })), INVALID_CDB, 'too little');
      c[13] = 0;
      assert.equal(sense(await fx.run(I1, c, { dataOut: Buffer.alloc(1024), edtl: 1024 })), INVALID_CDB, 'N=0 with data (a wrapped 256)');
      c[13] = 2;
      assert.equal((await fx.run(I1, c, { dataOut: Buffer.alloc(2048), edtl: 2048 })).status, 0);
    });
    it('COMPARE AND WRITE miscompare reports the offset of the first differing byte in INFORMATION', async () => {
      await fx.run(I1, cdb10(0x2a, 300, 1), { dataOut: Buffer.alloc(512, 7) });
      const c = Buffer.alloc(16);
      c[0] = 0x89;
      c.writeBigUInt64BE(300n, 2);
      c[13] = 1;
      const data = Buffer.alloc(1024, 7);
      data[42] = 8;
      const r = await fx.run(I1, c, { dataOut: data });
      assert.equal(sense(r), 'e/1d/00');
      assert.equal(r.sense?.[0], 0xf0, 'fixed format with VALID');
      assert.equal(r.sense?.readUInt32BE(3), 42);
    });
    it('WRITE SAME: above MAXIMUM WRITE SAME LENGTH or with ANCHOR is refused; 0 blocks means to the end', async () => {
      assert.equal(sense(await fx.run(I1, cdb16(0x93, 0n, 0, 0x10), { dataOut: Buffer.alloc(512) })), INVALID_CDB);
      const big = new ScsiFixture(4 * 1024 * MiB);
      await big.ready(I1);
      assert.equal(sense(await big.run(I1, cdb16(0x93, 0n, 0), { dataOut: Buffer.alloc(512) })), INVALID_CDB, '4 GiB > 1 GiB limit');
      assert.equal((await big.run(I1, cdb16(0x93, BigInt((4 * 1024 * MiB) / 512 - 8), 0), { dataOut: Buffer.alloc(512, 1) })).status, 0);
      await big.close();
    });
    it('PERSISTENT RESERVE OUT needs a 24-byte parameter list; a bad TYPE or SCOPE is refused', async () => {
      assert.equal(sense(await fx.run(I1, [0x5f, 0, 0, 0, 0, 0, 0, 0, 20, 0], { dataOut: Buffer.alloc(20) })), '5/1a/00');
      const reg = Buffer.alloc(24);
      reg.writeBigUInt64BE(0x1234n, 8);
      assert.equal((await fx.run(I1, [0x5f, 0x06, 0, 0, 0, 0, 0, 0, 24, 0], { dataOut: reg })).status, 0);
      const res = Buffer.alloc(24);
      res.writeBigUInt64BE(0x1234n, 0);
      assert.equal(sense(await fx.run(I1, [0x5f, 0x01, 0x02, 0, 0, 0, 0, 0, 24, 0], { dataOut: res })), INVALID_CDB);
      assert.equal(sense(await fx.run(I1, [0x5f, 0x01, 0x11, 0, 0, 0, 0, 0, 24, 0], { dataOut: res })), INVALID_CDB);
      const unreg = Buffer.alloc(24);
      unreg.writeBigUInt64BE(0x1234n, 0);
      assert.equal((await fx.run(I1, [0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0], { dataOut: unreg })).status, 0);
    });
  });
});
