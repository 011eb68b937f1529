import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AluaStates } from '../../src/scsi/alua';
import type { LogicalUnit } from '../../src/scsi/logical-unit';
import { MiB, nexus, ScsiFixture, sense } from '../lib/scsi-fixture';

/** A two-node cluster's LU as node `self` presents it (groups 1 = a, 2 = b; b preferred). */
function clusterLu(self: 'a' | 'b'): { fx: ScsiFixture; lu: LogicalUnit; alua: AluaStates } {
  const groups = [
    { id: 1, node: 'a' },
    { id: 2, node: 'b' },
  ];
  const local = groups.find((g) => g.node === self) ?? groups[0];
  const alua = new AluaStates(groups, local, groups[1]);
  const fx = new ScsiFixture(64 * MiB, 512, undefined, { alua, relativePortId: local.id });
  return { fx, lu: fx.lu, alua };
}

const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const WRITE10 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const rtpgCdb = (extended: boolean): number[] => [0xa3, (extended ? 0x20 : 0) | 0x0a, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0];

describe('ALUA, implicit (SPC-5 r20 §5.16): what a cluster node presents', () => {
  it('INQUIRY reports TPGS 01b in a cluster and 00b alone', async () => {
    const { fx } = clusterLu('a');
    const n = nexus('h');
    const std = await fx.run(n, [0x12, 0, 0, 0, 96, 0]);
    assert.equal((std.data?.[5] ?? 0) & 0x30, 0x10);
    const alone = new ScsiFixture();
    const s2 = await alone.run(n, [0x12, 0, 0, 0, 96, 0]);
    assert.equal((s2.data?.[5] ?? 0) & 0x30, 0x00);
    await fx.close();
    await alone.close();
  });

  it('REPORT TARGET PORT GROUPS lists every group with its state, the preferred bit and its one port, length-only and extended headers', async () => {
    const { fx, alua } = clusterLu('a');
    alua.set('a');
    const n = nexus('h');
    await fx.ready(n);
    const ext = await fx.run(n, rtpgCdb(true));
    assert.equal(ext.status, 0, sense(ext));
    const d = ext.data ?? Buffer.alloc(0);
    assert.equal(d.readUInt32BE(0), d.length - 4);
    assert.equal(d[4], 0x10, 'FORMAT TYPE 001b');
    assert.equal(d[5], 30, 'IMPLICIT TRANSITION TIME');
    // Group 1 (a): active/optimized, port 1; group 2 (b, preferred): standby, so no PREF, port 2.
    assert.deepEqual([d[8] & 0x8f, d[9], d.readUInt16BE(10), d[15], d.readUInt16BE(18)], [0x00, 0x85, 1, 1, 1]);
    assert.deepEqual([d[20] & 0x8f, d.readUInt16BE(22), d[27], d.readUInt16BE(30)], [0x02, 2, 1, 2]);
    const plain = await fx.run(n, rtpgCdb(false));
    assert.equal(plain.data?.readUInt32BE(0), 24, 'length-only header: two 12-byte descriptors');
    // Nobody active (between a crash and the takeover): both standby.
    alua.set(undefined);
    const none = (await fx.run(n, rtpgCdb(true))).data ?? Buffer.alloc(0);
    assert.deepEqual([none[8] & 0x0f, none[20] & 0x0f], [2, 2]);
    await fx.close();
  });

  it('PREF is set only while the preferred group is active: a preferred standby would outrank the active path in Linux multipath', async () => {
    const { fx, alua } = clusterLu('a');
    const n = nexus('h');
    await fx.ready(n);
    const pref = async (): Promise<number[]> => {
      const d = (await fx.run(n, rtpgCdb(true))).data ?? Buffer.alloc(0);
      return [d[8], d[20]];
    };
    alua.set('b'); // the preferred node (b) is active: PREF on its group
    assert.deepEqual(await pref(), [0x02, 0x80]);
    alua.set('a'); // b came back after a takeover by a: standby, no PREF
    assert.deepEqual(await pref(), [0x00, 0x02]);
    alua.set(undefined);
    assert.deepEqual(await pref(), [0x02, 0x02]);
    await fx.close();
  });

  it('standby: media access ends in 02/04/0B, while INQUIRY, TUR, READ CAPACITY, MODE SENSE, REPORT LUNS, REQUEST SENSE and RTPG run', async () => {
    const { fx, alua } = clusterLu('b');
    alua.set('a');
    const n = nexus('h');
    await fx.ready(n);
    assert.equal(sense(await fx.run(n, READ10)), '2/04/0b');
    assert.equal(sense(await fx.run(n, WRITE10, { dataOut: Buffer.alloc(512) })), '2/04/0b');
    assert.equal(sense(await fx.run(n, [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0])), '2/04/0b', 'SYNCHRONIZE CACHE');
    for (const [name, cdb] of [
      ['INQUIRY', [0x12, 0, 0, 0, 96, 0]],
      ['TEST UNIT READY', [0, 0, 0, 0, 0, 0]],
      ['READ CAPACITY(10)', [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
      ['MODE SENSE(6)', [0x1a, 0, 0x3f, 0, 255, 0]],
      ['REPORT LUNS', [0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]],
      ['REQUEST SENSE', [0x03, 0, 0, 0, 18, 0]],
      ['RTPG', rtpgCdb(true)],
    ] as const) {
      const o = await fx.run(n, Buffer.from(cdb));
      assert.equal(o.status, 0, `${name} on standby: ${sense(o)}`);
    }
    await fx.close();
  });

  it('every transition raises ASYMMETRIC ACCESS STATE CHANGED; a node in transition answers media access with 02/04/0A', async () => {
    const { fx, lu, alua } = clusterLu('b');
    alua.set('a');
    const n = nexus('h');
    await fx.ready(n);
    // b takes over: transitioning first, then active.
    if (alua.set('b', true)) lu.ua.establish('AsymmetricAccessStateChanged');
    assert.equal(sense(await fx.run(n, READ10)), '6/2a/06');
    assert.equal(sense(await fx.run(n, READ10)), '2/04/0a');
    if (alua.set('b')) lu.ua.establish('AsymmetricAccessStateChanged');
    assert.equal(sense(await fx.run(n, READ10)), '6/2a/06');
    assert.equal((await fx.run(n, READ10)).status, 0, 'active now');
    assert.equal(alua.set('b'), false, 'no change, no unit attention');
    await fx.close();
  });

  it('a cluster LU whose lease another node took answers 02/04/0B (standby), not 02/04/03, so multipath moves at once', async () => {
    const { fx, alua } = clusterLu('a');
    alua.set('a');
    const n = nexus('h');
    await fx.ready(n);
    fx.volume.gate.fence('the lease was taken over by another process');
    const o = await fx.run(n, WRITE10, { dataOut: Buffer.alloc(512) });
    assert.equal(sense(o), '2/04/0b');
    const alone = new ScsiFixture();
    await alone.ready(n);
    alone.volume.gate.fence('the lease was taken over by another process');
    assert.equal(sense(await alone.run(n, WRITE10, { dataOut: Buffer.alloc(512) })), '2/04/03', 'alone: LEASE LOST as before');
    await fx.close().catch(() => undefined);
    await alone.close().catch(() => undefined);
  });

  it('VPD 83h carries the port group and the relative port of this node', async () => {
    const { fx } = clusterLu('b');
    const n = nexus('h');
    const v = (await fx.run(n, [0x12, 1, 0x83, 0, 255, 0])).data ?? Buffer.alloc(0);
    const found = new Map<number, number>();
    for (let o = 4; o + 4 <= v.length; o += 4 + v[o + 3]) {
      if (((v[o + 1] >> 4) & 3) === 1) found.set(v[o + 1] & 0x0f, v.readUInt16BE(o + 6));
    }
    assert.equal(found.get(5), 2, 'TARGET PORT GROUP designator: group 2');
    assert.equal(found.get(4), 2, 'RELATIVE TARGET PORT IDENTIFIER 2');
    await fx.close();
  });
});
