import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LogicalUnit } from '../../src/scsi/logical-unit';
import { encodeLun } from '../../src/scsi/lun-address';
import { TaskAttribute } from '../../src/scsi/status';
import { cdb10, MiB, nexus, ScsiFixture, sense } from '../lib/scsi-fixture';

const A = nexus('alpha');
const B = nexus('beta');
const TUR = [0, 0, 0, 0, 0, 0];
const CONFLICT = 'status 24';

function prOut(action: number, type: number, key: bigint, saKey: bigint, aptpl = false): { cdb: number[]; dataOut: Buffer } {
  const d = Buffer.alloc(24);
  d.writeBigUInt64BE(key, 0);
  d.writeBigUInt64BE(saKey, 8);
  if (aptpl) d[20] = 1;
  return { cdb: [0x5f, action, type, 0, 0, 0, 0, 0, 24, 0], dataOut: d };
}

describe('unit attentions (SPC-5 §5.14)', () => {
  it('a new I_T nexus sees POWER ON/RESET once; INQUIRY and REPORT LUNS do not clear it, REQUEST SENSE does', async () => {
    const fx = new ScsiFixture();
    assert.equal((await fx.run(A, [0x12, 0, 0, 0, 36, 0])).status, 0);
    assert.equal(sense(await fx.run(A, TUR)), '6/29/00');
    assert.equal(sense(await fx.run(A, TUR)), 'status 0');
    const r = await fx.run(B, [0x03, 0, 0, 0, 18, 0]);
    assert.equal(r.data?.[12], 0x29, 'REQUEST SENSE returns the pending UA as data');
    assert.equal(sense(await fx.run(B, TUR)), 'status 0');
    await fx.close();
  });

  it('MODE SELECT of D_SENSE tells other nexuses and switches to descriptor-format sense', async () => {
    const fx = new ScsiFixture();
    await fx.ready(A);
    await fx.ready(B);
    const ms = (await fx.run(A, [0x1a, 0x08, 0x0a, 0, 255, 0])).data as Buffer; // DBD, Control page
    const page = Buffer.from(ms.subarray(4));
    page[2] |= 0x04; // D_SENSE
    const sel = Buffer.concat([Buffer.alloc(4), page]);
    assert.equal((await fx.run(A, [0x15, 0x10, 0, 0, sel.length, 0], { dataOut: sel })).status, 0);
    assert.equal(sense(await fx.run(B, TUR)), '6/2a/01', 'MODE PARAMETERS CHANGED for the other nexus');
    assert.equal(sense(await fx.run(A, TUR)), 'status 0', 'not for the one that changed them');
    const oob = await fx.run(A, cdb10(0x28, 0xffffff00, 1));
    assert.equal(oob.sense?.[0], 0x72, 'descriptor format');
    assert.equal(sense(oob), '5/21/00');
    // A bit that is not changeable is refused, and nothing changes.
    page[3] ^= 0x10; // QUEUE ALGORITHM MODIFIER
    const bad = Buffer.concat([Buffer.alloc(4), page]);
    assert.equal(sense(await fx.run(A, [0x15, 0x10, 0, 0, bad.length, 0], { dataOut: bad })), '5/26/00');
    await fx.close();
  });

  it('MODE SELECT of WCE switches the volume to write-through and back; SWP write-protects', async () => {
    const fx = new ScsiFixture();
    await fx.ready(A);
    const caching = ((await fx.run(A, [0x1a, 0x08, 0x08, 0, 255, 0])).data as Buffer).subarray(4);
    assert.equal(caching[2] & 0x04, 0x04, 'WCE=1 reports the write-back cache');
    const p = Buffer.from(caching);
    p[2] &= ~0x04;
    const sel = Buffer.concat([Buffer.alloc(4), p]);
    await fx.run(A, [0x15, 0x11, 0, 0, sel.length, 0], { dataOut: sel }); // SP=1: saved
    assert.equal(fx.volume.cacheMode, 'write-through');
    // The saved page survives a "restart": a new LU over the same volume restores it.
    const lu2 = new LogicalUnit(1, fx.volume, fx.lu.identity, fx.target);
    await fx.volume.setCacheMode('write-back');
    await lu2.load();
    assert.equal(fx.volume.cacheMode, 'write-through');
    const control = Buffer.from(((await fx.run(A, [0x1a, 0x08, 0x0a, 0, 255, 0])).data as Buffer).subarray(4));
    control[4] |= 0x08; // SWP
    const swp = Buffer.concat([Buffer.alloc(4), control]);
    await fx.run(A, [0x15, 0x10, 0, 0, swp.length, 0], { dataOut: swp });
    assert.equal(sense(await fx.run(A, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(512) })), '7/27/02');
    await fx.close();
  });
});

describe('reservations', () => {
  it('SPC-2 RESERVE(6): the other nexus conflicts on everything but INQUIRY/REPORT LUNS/REQUEST SENSE/RELEASE; LU reset drops it', async () => {
    const fx = new ScsiFixture();
    await fx.ready(A);
    await fx.ready(B);
    assert.equal((await fx.run(A, [0x16, 0, 0, 0, 0, 0])).status, 0);
    assert.equal(sense(await fx.run(B, [0x16, 0, 0, 0, 0, 0])), CONFLICT);
    assert.equal(sense(await fx.run(B, [0x1a, 0, 0x3f, 0, 255, 0])), CONFLICT, 'MODE SENSE conflicts');
    assert.equal((await fx.run(B, [0x12, 0, 0, 0, 36, 0])).status, 0);
    assert.equal((await fx.run(B, [0x17, 0, 0, 0, 0, 0])).status, 0, 'RELEASE of someone else is a no-op');
    assert.equal(sense(await fx.run(B, TUR)), CONFLICT);
    await fx.target.manage('lun-reset', A, encodeLun(0), 999);
    assert.equal(sense(await fx.run(B, TUR)), '6/29/03');
    assert.equal(sense(await fx.run(B, TUR)), 'status 0', 'the reservation is gone');
    await fx.close();
  });

  const matrix: Array<[string, number, [boolean, boolean, boolean, boolean]]> = [
    // type, [registered B may read, may write, unregistered B may read, may write]
    ['Write Exclusive', 1, [true, false, true, false]],
    ['Exclusive Access', 3, [false, false, false, false]],
    ['Write Exclusive, Registrants Only', 5, [true, true, true, false]],
    ['Exclusive Access, Registrants Only', 6, [true, true, false, false]],
    ['Write Exclusive, All Registrants', 7, [true, true, true, false]],
    ['Exclusive Access, All Registrants', 8, [true, true, false, false]],
  ];
  for (const [name, type, [rr, rw, ur, uw]] of matrix) {
    it(`persistent reservation ${name}: access of a registered and an unregistered nexus`, async () => {
      const fx = new ScsiFixture();
      await fx.ready(A);
      await fx.ready(B);
      const ok = async (n: typeof A, c: { cdb: number[]; dataOut: Buffer }): Promise<void> => {
        assert.equal(sense(await fx.run(n, c.cdb, { dataOut: c.dataOut })), 'status 0');
      };
      await ok(A, prOut(6, 0, 0n, 0xaan));
      await ok(B, prOut(6, 0, 0n, 0xbbn));
      await ok(A, prOut(1, type, 0xaan, 0n));
      const read = async (): Promise<boolean> => (await fx.run(B, cdb10(0x28, 0, 1))).status === 0;
      const write = async (): Promise<boolean> => (await fx.run(B, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(512) })).status === 0;
      assert.deepEqual([await read(), await write()], [rr, rw], 'registered');
      await ok(B, prOut(0, 0, 0xbbn, 0n));
      assert.deepEqual([await read(), await write()], [ur, uw], 'unregistered');
      assert.equal((await fx.run(A, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(512) })).status, 0, 'the holder writes');
      await fx.close();
    });
  }

  it('PR state survives a restart only with APTPL, and READ KEYS / READ RESERVATION report it', async () => {
    const fx = new ScsiFixture();
    await fx.ready(A);
    const run = async (c: { cdb: number[]; dataOut: Buffer }): Promise<number> => (await fx.run(A, c.cdb, { dataOut: c.dataOut })).status;
    assert.equal(await run(prOut(6, 0, 0n, 0x1111n, true)), 0);
    assert.equal(await run(prOut(1, 1, 0x1111n, 0n)), 0);
    const restarted = new LogicalUnit(0, fx.volume, fx.lu.identity, fx.target);
    await restarted.load();
    assert.equal(restarted.reservations.registrations.size, 1);
    assert.equal(restarted.reservations.reservation?.type, 1);
    const keys = (await fx.run(A, [0x5e, 0, 0, 0, 0, 0, 0, 0, 255, 0])).data as Buffer;
    assert.equal(keys.readUInt32BE(4), 8);
    assert.equal(keys.readBigUInt64BE(8), 0x1111n);
    const res = (await fx.run(A, [0x5e, 1, 0, 0, 0, 0, 0, 0, 255, 0])).data as Buffer;
    assert.equal(res.readBigUInt64BE(8), 0x1111n);
    assert.equal(res[21], 1);
    // Without APTPL the next "power cycle" forgets everything.
    assert.equal(await run(prOut(6, 0, 0n, 0x2222n, false)), 0);
    const again = new LogicalUnit(0, fx.volume, fx.lu.identity, fx.target);
    await again.load();
    assert.equal(again.reservations.registrations.size, 0);
    await fx.close();
  });

  it('PREEMPT AND ABORT removes the holder, takes the reservation and aborts its queued tasks', async () => {
    const fx = new ScsiFixture();
    await fx.ready(A);
    await fx.ready(B);
    await fx.run(A, prOut(6, 0, 0n, 0xaan).cdb, { dataOut: prOut(6, 0, 0n, 0xaan).dataOut });
    await fx.run(B, prOut(6, 0, 0n, 0xbbn).cdb, { dataOut: prOut(6, 0, 0n, 0xbbn).dataOut });
    await fx.run(A, prOut(1, 3, 0xaan, 0n).cdb, { dataOut: prOut(1, 3, 0xaan, 0n).dataOut });
    // A write of A still waiting for its Data-Out: queued, not started.
    const victim = fx.target.submit({
      nexus: A,
      lun: 0n,
      cdb: cdb10(0x2a, 0, 1),
      tag: 5001,
      attribute: TaskAttribute.Simple,
      dataOutBufferSize: 512,
    });
    const p = prOut(5, 3, 0xbbn, 0xaan);
    assert.equal((await fx.run(B, p.cdb, { dataOut: p.dataOut })).status, 0);
    assert.equal(await victim.execute([Buffer.alloc(512, 9)]), null, 'aborted: no response, nothing written');
    assert.equal(((await fx.run(B, cdb10(0x28, 0, 1))).data as Buffer)[0], 0);
    assert.equal(fx.lu.reservations.reservation?.holder, B.id);
    assert.equal(sense(await fx.run(A, TUR)), '6/2a/05', 'REGISTRATIONS PREEMPTED');
    await fx.close();
  });
});

describe('task set (SAM-5 §8.6) and task management', () => {
  it('an ORDERED task waits for earlier tasks, and later SIMPLE tasks wait for it', async () => {
    const fx = new ScsiFixture(8 * MiB);
    await fx.ready(A);
    const order: string[] = [];
    const submit = (tag: number, attr: TaskAttribute) =>
      fx.target.submit({ nexus: A, lun: 0n, cdb: Buffer.from(TUR), tag, attribute: attr, dataOutBufferSize: 0 });
    const t1 = submit(1, TaskAttribute.Simple);
    const t2 = submit(2, TaskAttribute.Ordered);
    const t3 = submit(3, TaskAttribute.Simple);
    const p3 = t3.execute().then(() => order.push('3'));
    const p2 = t2.execute().then(() => order.push('2'));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(order.length, 0, 'nothing ran before task 1');
    await t1.execute().then(() => order.push('1'));
    await Promise.all([p2, p3]);
    assert.deepEqual(order, ['1', '2', '3']);
    await fx.close();
  });

  it('ABORT TASK of a queued task ends it without a response; the TMF completes after it ended', async () => {
    const fx = new ScsiFixture(8 * MiB);
    await fx.ready(A);
    const t = fx.target.submit({ nexus: A, lun: 0n, cdb: Buffer.from(TUR), tag: 77, attribute: TaskAttribute.Simple, dataOutBufferSize: 0 });
    let aborted = false;
    t.onAbort(() => {
      aborted = true;
      t.cancel();
    });
    assert.equal(await fx.target.manage('abort-task', A, 0n, 77), 'complete');
    assert.ok(aborted);
    assert.equal(await t.execute(), null);
    assert.equal(await fx.target.manage('abort-task', A, 0n, 78), 'no-task');
    assert.equal(await fx.target.manage('lun-reset', A, encodeLun(5), 1), 'no-lun');
    await fx.close();
  });
});
