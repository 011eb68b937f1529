import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClusterPair, clusterView, DEFAULT_CLUSTER_LUNS, waitRole } from '../harness/cluster';
import { run } from '../harness/exec';
import { FaultProxy } from '../harness/fault-proxy';
import { type Answer, ascOf, block, CHECK, CONFLICT, GOOD, multipathWriter, Path, verify } from '../harness/multipath';
import { Rgw } from '../harness/rgw';
import { TEST_IQN } from '../harness/target';
import { formatScore, runTestcu } from '../harness/testcu';
import { read10, TUR, write10 } from '../lib/cdb';
import { inquiry, modeSense6, READ_CAPACITY10, reportLuns } from '../personality/cdbs';

/**
 * Issue 17: two s3tgt nodes presenting one LUN with implicit ALUA, on one RGW bucket
 * (docs/ha.md). Each test drives the real processes through raw iSCSI sessions; the
 * "multipath" writer (harness/multipath.ts) does what dm-multipath does with ALUA sense: it moves to the other
 * path on 02/04/0B and retries 02/04/0A and unit attentions on the same one.
 */

/** REPORT TARGET PORT GROUPS (A3h/0Ah), extended header: group id -> [state, preferred]. */
async function rtpg(p: Path): Promise<Map<number, { state: number; pref: boolean; ports: number[] }>> {
  const cdb = Buffer.alloc(12);
  cdb[0] = 0xa3;
  cdb[1] = 0x20 | 0x0a;
  cdb.writeUInt32BE(1024, 6);
  const r = await p.exec(cdb, { read: 1024 });
  assert.equal(r.status, GOOD, `RTPG: ${r.status === CHECK ? ascOf(r) : r.status}`);
  const d = r.data;
  assert.equal(d[4] & 0x70, 0x10, 'extended header');
  const out = new Map<number, { state: number; pref: boolean; ports: number[] }>();
  let o = 8;
  while (o < 4 + d.readUInt32BE(0)) {
    const n = d[o + 7];
    const ports = Array.from({ length: n }, (_, k) => d.readUInt16BE(o + 8 + 4 * k + 2));
    out.set(d.readUInt16BE(o + 2), { state: d[o] & 0x0f, pref: (d[o] & 0x80) !== 0, ports });
    o += 8 + 4 * n;
  }
  return out;
}

/** VPD 83h designators of type `type` with association target port (01b). */
function portDesignator(vpd83: Buffer, type: number): number | undefined {
  let o = 4;
  while (o + 4 <= vpd83.length) {
    const len = vpd83[o + 3];
    if ((vpd83[o + 1] & 0x0f) === type && ((vpd83[o + 1] >> 4) & 0x03) === 1) return vpd83.readUInt16BE(o + 6);
    o += 4 + len;
  }
  return undefined;
}

describe('HA: two nodes, implicit ALUA, takeover and hand-over (issue 17)', { timeout: 900_000 }, () => {
  let rgw: Rgw;
  before(async () => {
    rgw = await Rgw.start();
  });
  after(async () => {
    await rgw?.stop();
  });

  it('every node presents the LUN: TPGS 01b, its own port group and relative port in VPD 83h, RTPG from both, standby refuses media access with 02/04/0B', async () => {
    await rgw.createBucket('ha-alua');
    const pair = new ClusterPair(rgw, { bucket: 'ha-alua', logLevel: 'info' });
    try {
      await pair.up();
      await waitRole(pair.b, 'ha0', 'standby');
      // One discovery address finds every node's portal, each with its node's TPGT.
      const disco = await run('iscsi-ls', [`iscsi://127.0.0.1:${pair.a.port}`]);
      assert.equal(disco.code, 0, disco.stderr);
      assert.match(disco.stdout, new RegExp(`127\\.0\\.0\\.1:${pair.a.port},1`));
      assert.match(disco.stdout, new RegExp(`127\\.0\\.0\\.1:${pair.b.port},2`));
      const pa = await Path.open(pair.a);
      const pb = await Path.open(pair.b);
      for (const [p, group] of [
        [pa, 1],
        [pb, 2],
      ] as const) {
        const std = await p.exec(inquiry(96), { read: 96 });
        assert.equal((std.data[5] >> 4) & 0x03, 1, 'TPGS = 01b (implicit ALUA)');
        const v = (await p.exec(inquiry(255, 0x83), { read: 255 })).data;
        assert.equal(portDesignator(v, 5), group, 'target port group designator');
        assert.equal(portDesignator(v, 4), group, 'relative target port identifier');
        const groups = await rtpg(p);
        assert.deepEqual(groups.get(1), { state: 0, pref: true, ports: [1] }, 'node a: active/optimized, preferred');
        assert.deepEqual(groups.get(2), { state: 2, pref: false, ports: [2] }, 'node b: standby');
      }
      // The same LU everywhere: the NAA designator agrees (multipath keys on it).
      const naa = async (p: Path) => (await p.exec(inquiry(255, 0x83), { read: 255 })).data.subarray(4, 24).toString('hex');
      assert.equal(await naa(pa), await naa(pb));
      // Standby: what does not touch the medium works; media access is 02/04/0B.
      assert.equal((await pb.exec(TUR)).status, GOOD, 'TEST UNIT READY on standby');
      const cap = await pb.exec(READ_CAPACITY10, { read: 8 });
      assert.equal(cap.status, GOOD, 'READ CAPACITY on standby');
      assert.equal(cap.data.readUInt32BE(0), (256 * 1024 * 1024) / 512 - 1);
      assert.equal((await pb.exec(modeSense6(0x3f, 255), { read: 255 })).status, GOOD, 'MODE SENSE on standby');
      assert.equal((await pb.exec(reportLuns(0), { read: 4096 })).status, GOOD, 'REPORT LUNS on standby');
      const rd = await pb.exec(read10(0, 1), { read: 512 });
      assert.equal(rd.status, CHECK);
      assert.equal(ascOf(rd), '02/04/0b', 'READ on standby');
      const wr = await pb.exec(write10(0, 1), { write: block(0, 1) });
      assert.equal(ascOf(wr), '02/04/0b', 'WRITE on standby');
      assert.equal((await pa.exec(write10(0, 1), { write: block(0, 1) })).status, GOOD, 'WRITE on active');
      // Grown online on the active node: the standby follows, with CAPACITY DATA HAS CHANGED.
      const grow = await run(process.execPath, ['dist/src/cli/main.js', 'lun', 'resize', 'ha0', '--size', '384MiB', '--config', pair.a.configFile], {
        timeoutMs: 60_000,
      });
      assert.equal(grow.code, 0, grow.stderr);
      let uas: string[] = [];
      for (let i = 0; i < 100 && !uas.includes('06/2a/09'); i++) {
        uas = uas.concat(await pb.clearUa());
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(uas.includes('06/2a/09'), `CAPACITY DATA HAS CHANGED on the standby (saw ${uas.join(', ')})`);
      const cap2 = await pb.exec(READ_CAPACITY10, { read: 8 });
      assert.equal(cap2.data.readUInt32BE(0), (384 * 1024 * 1024) / 512 - 1, 'the standby reports the new size');
      pa.close();
      pb.close();
    } finally {
      await pair.down();
    }
  });

  it('kill -9 of the active node: the standby takes the lease after ttl + margin, raises 2A/06, and serves every acknowledged write', async () => {
    await rgw.createBucket('ha-kill');
    const pair = new ClusterPair(rgw, { bucket: 'ha-kill', logLevel: 'info' });
    try {
      await pair.up();
      const pa = await Path.open(pair.a);
      const pb = await Path.open(pair.b);
      const watcher = await Path.open(pair.b, 'iqn.2026-12.test:ha-watcher');
      let stop = false;
      const writer = multipathWriter([pa, pb], 4096, () => stop);
      await new Promise((r) => setTimeout(r, 2_000));
      const killedAt = Date.now();
      await pair.a.stop('SIGKILL');
      const tookMs = await waitRole(pair.b, 'ha0', 'active', 30_000);
      // I/O goes on through node b: wait for a few more acknowledged writes.
      await new Promise((r) => setTimeout(r, 2_000));
      stop = true;
      const w = await writer;
      assert.deepEqual(w.errors, [], 'no I/O error across the takeover');
      assert.equal(w.current, 1, 'the writer moved to node b');
      const firstIoAfter = w.switches.length > 0 ? w.switches[0] : Number.NaN;
      console.log(
        `takeover: kill -> node b active ${(tookMs / 1000).toFixed(1)} s (lease ttl 4 s + margin 1 s); writes acknowledged: ${w.acked.size}; path switch ${firstIoAfter} ms into the run`,
      );
      assert.ok(Date.now() - killedAt < 30_000);
      assert.ok((await watcher.clearUa()).includes('06/2a/06'), 'ASYMMETRIC ACCESS STATE CHANGED on node b');
      watcher.close();
      const groups = await rtpg(pb);
      assert.equal(groups.get(2)?.state, 0, 'node b active/optimized');
      assert.equal(groups.get(1)?.state, 2, 'node a standby');
      await verify(pb, w.acked);
      pb.close();
    } finally {
      await pair.down();
    }
  });

  it('lun move under load: hands the LUN over at a barrier and back, no I/O error, every acknowledged write read back', async () => {
    await rgw.createBucket('ha-move');
    const pair = new ClusterPair(rgw, { bucket: 'ha-move', logLevel: 'info' });
    try {
      await pair.up();
      const pa = await Path.open(pair.a);
      const pb = await Path.open(pair.b);
      let stop = false;
      const writer = multipathWriter([pa, pb], 4096, () => stop);
      await new Promise((r) => setTimeout(r, 1_500));
      const cli = ['dist/src/cli/main.js', 'lun', 'move', 'ha0'];
      const toB = await run(process.execPath, [...cli, 'b', '--config', pair.a.configFile], { timeoutMs: 120_000 });
      assert.equal(toB.code, 0, toB.stderr);
      assert.match(toB.stdout, /moved "ha0" from node a to node b/);
      await waitRole(pair.b, 'ha0', 'active', 10_000);
      await new Promise((r) => setTimeout(r, 1_500));
      const toA = await run(process.execPath, [...cli, 'a', '--config', pair.b.configFile], { timeoutMs: 120_000 });
      assert.equal(toA.code, 0, toA.stderr);
      await waitRole(pair.a, 'ha0', 'active', 10_000);
      await new Promise((r) => setTimeout(r, 1_500));
      stop = true;
      const w = await writer;
      assert.deepEqual(w.errors, [], 'no I/O error across two hand-overs');
      assert.ok(w.switches.length >= 2, `the writer followed the LUN (switches at ${w.switches.join(', ')} ms)`);
      console.log(`lun move: ${toB.stdout.trim()} / ${toA.stdout.trim()}; writes acknowledged: ${w.acked.size}`);
      await verify(pa, w.acked);
      const view = await clusterView(pair.a);
      assert.equal(view.luns[0].active, 'a');
      pa.close();
      pb.close();
    } finally {
      await pair.down();
    }
  });

  it('a Failover-Clustering PR sequence survives a takeover: keys and the reservation are read on the new node, the owner re-registers on its new path and writes, others conflict', async () => {
    await rgw.createBucket('ha-pr');
    const pair = new ClusterPair(rgw, { bucket: 'ha-pr', logLevel: 'info' });
    const isid1 = Buffer.from([0x40, 0, 0, 0, 0, 1]);
    const isid2 = Buffer.from([0x40, 0, 0, 0, 0, 2]);
    try {
      await pair.up();
      // Two cluster nodes (initiators), each with a path to node a.
      const n1a = await Path.open(pair.a, 'iqn.2026-12.test:wsfc-node1', isid1);
      const n2a = await Path.open(pair.a, 'iqn.2026-12.test:wsfc-node2', isid2);
      const K1 = 0x1111n;
      const K2 = 0x2222n;
      assert.equal((await prout(n1a, 0x00, 0, 0n, K1)).status, GOOD, 'node1 REGISTER');
      assert.equal((await prout(n2a, 0x00, 0, 0n, K2)).status, GOOD, 'node2 REGISTER');
      // Windows: WRITE EXCLUSIVE - REGISTRANTS ONLY, held by the owner.
      assert.equal((await prout(n1a, 0x01, 5, K1, 0n)).status, GOOD, 'node1 RESERVE type 5');
      // Node b sees it through its standby port (PR IN reads the store).
      const n1b0 = await Path.open(pair.b, 'iqn.2026-12.test:wsfc-node1', isid1);
      assert.deepEqual(keysOf(await prin(n1b0, 0x00)), [K1, K2], 'READ KEYS on the standby port');
      n1b0.close();
      await pair.a.stop('SIGKILL');
      await waitRole(pair.b, 'ha0', 'active', 30_000);
      // The owner's new path (same initiator port, node b's target port).
      const n1b = await Path.open(pair.b, 'iqn.2026-12.test:wsfc-node1', isid1);
      const n3b = await Path.open(pair.b, 'iqn.2026-12.test:outsider');
      assert.deepEqual(keysOf(await prin(n1b, 0x00)), [K1, K2], 'READ KEYS after the takeover');
      const res = await prin(n1b, 0x01);
      assert.equal(res.readUInt32BE(4), 16, 'a reservation is held');
      assert.equal(res.readBigUInt64BE(8), K1, 'by the owner key');
      assert.equal(res[21] & 0x0f, 5, 'type 5: write exclusive, registrants only');
      // msdsm re-registers the key on the new path; the owner then writes.
      assert.equal((await prout(n1b, 0x06, 0, 0n, K1)).status, GOOD, 'REGISTER AND IGNORE EXISTING KEY on the new path');
      assert.equal((await n1b.exec(write10(8, 1), { write: block(8, 1) })).status, GOOD, 'the owner writes');
      assert.equal((await n3b.exec(write10(8, 1), { write: block(8, 2) })).status, CONFLICT, 'an unregistered initiator conflicts');
      // A challenger preempts, as arbitration does when the owner is gone.
      const n2b = await Path.open(pair.b, 'iqn.2026-12.test:wsfc-node2', isid2);
      assert.equal((await prout(n2b, 0x06, 0, 0n, K2)).status, GOOD);
      assert.equal((await prout(n2b, 0x04, 5, K2, K1)).status, GOOD, 'PREEMPT');
      // Node2's key stays registered through both of its nexuses (paths a and b); node1's are gone.
      assert.deepEqual(keysOf(await prin(n2b, 0x00)), [K2, K2]);
      for (const p of [n1b, n2b, n3b]) p.close();
    } finally {
      await pair.down();
    }
  });

  it("a node cut off from S3 stops writing before the other takes over; its late chunk PUTs reach RGW after the takeover and fail with 412; the successor's data stays", async () => {
    await rgw.createBucket('ha-cut');
    const proxy = new FaultProxy(rgw.port);
    await proxy.start();
    const pair = new ClusterPair(rgw, { bucket: 'ha-cut', logLevel: 'info', endpoints: { a: proxy.endpoint } });
    try {
      await pair.up();
      const pa = await Path.open(pair.a);
      const pb = await Path.open(pair.b);
      assert.equal((await pa.exec(write10(0, 1), { write: block(0, 1) })).status, GOOD);
      // Node a loses S3, while initiators still reach it: its lease requests vanish, and its
      // chunk PUTs are held in the network for 10 s (they arrive long after the takeover).
      proxy.rule({ action: 'black-hole', match: /lease\.json/ });
      proxy.rule({ action: 'delay-request', match: /^PUT .*\/chunks\//, delayMs: 10_000 });
      const cutAt = Date.now();
      const inFlight = pa.exec(write10(0, 1), { write: block(0, 7) }, 60_000);
      await waitRole(pair.b, 'ha0', 'active', 30_000);
      const takeoverAt = Date.now();
      console.log(`S3 cut: node b active ${((takeoverAt - cutAt) / 1000).toFixed(1)} s after node a lost S3`);
      const mine = block(0, 99);
      assert.equal((await pb.execAfterUa(write10(0, 1), { write: mine })).status, GOOD);
      // Node a never acknowledged the write it could not store.
      const late = await inFlight;
      assert.equal(late.status, CHECK, 'the cut-off node did not acknowledge the write');
      assert.match(ascOf(late), /^02\/04\/(01|03|0a|0b)$/, `retryable NOT READY, got ${ascOf(late)}`);
      // Wait for the held PUTs to arrive at RGW (the proxy logs each as it forwards it, 10 s
      // after it was sent; retries of it are sent up to retryDeadline later): each fails its condition.
      while (Date.now() < cutAt + 16_000) await new Promise((r) => setTimeout(r, 200));
      const deadline = Date.now() + 30_000;
      const held = () => proxy.forwarded.filter((f) => f.method === 'PUT' && /\/chunks\//.test(f.path) && f.sentAt >= cutAt);
      while (held().some((f) => f.status === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      const statuses = held().map((f) => f.status);
      console.log(`late chunk PUTs of the cut-off node: ${statuses.join(', ')}`);
      assert.ok(statuses.length > 0, 'node a had chunk PUTs in flight at the cut');
      assert.ok(
        statuses.every((st) => st === 412),
        `every late PUT failed its condition: ${statuses.join(', ')}`,
      );
      const back = await pb.exec(read10(0, 1), { read: 512 });
      assert.ok(back.data.equals(mine), "node b's write is what the LUN holds");
      // S3 comes back for node a: it finds the lease taken and stays standby.
      proxy.clearRules();
      await waitRole(pair.a, 'ha0', 'standby', 30_000);
      const rd = await pa.execAfterUa(read10(0, 1), { read: 512 });
      assert.equal(ascOf(rd), '02/04/0b', `node a is standby now\n${pair.a.output.slice(-4000)}`);
      pa.close();
      pb.close();
    } finally {
      await pair.down();
      await proxy.stop();
    }
  });

  it('iscsi-test-cu on the active node in a cluster, with a second portal of that node for the MultipathIO family: failed = 0', async () => {
    await rgw.createBucket('ha-testcu');
    // Write-back (conformance does not depend on the cache mode; write-through makes every
    // one of its small writes a 1 MiB PUT and the run 8 minutes long).
    const pair = new ClusterPair(rgw, {
      bucket: 'ha-testcu',
      logLevel: 'warn',
      secondPortalOnA: true,
      lunsYaml: DEFAULT_CLUSTER_LUNS.replace('mode: write-through', 'mode: write-back'),
    });
    try {
      await pair.up();
      const url2 = `iscsi://127.0.0.1:${pair.secondPortPortA}/${TEST_IQN}/0`;
      const score = await runTestcu(pair.a.url(0), 'ALL', 1_200_000, url2);
      console.log(`iscsi-test-cu (cluster, active node, MultipathIO over two portals): ${formatScore(score)}`);
      assert.equal(score.failed, 0, formatScore(score));
      const mp = [...score.results].filter(([k, v]) => k.startsWith('MultipathIO') && v.status === 'passed');
      assert.ok(mp.length >= 3, `MultipathIO tests ran and passed: ${mp.map(([k]) => k).join(', ')}`);
    } finally {
      await pair.down();
    }
  });
});

/** PERSISTENT RESERVE OUT, basic 24-byte parameter list (SPC-5 §6.17). */
function prout(p: Path, sa: number, type: number, key: bigint, saKey: bigint): Promise<Answer> {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5f;
  cdb[1] = sa;
  cdb[2] = type & 0x0f;
  cdb.writeUInt32BE(24, 5);
  const d = Buffer.alloc(24);
  d.writeBigUInt64BE(key, 0);
  d.writeBigUInt64BE(saKey, 8);
  return p.exec(cdb, { write: d });
}

/** PERSISTENT RESERVE IN data (SPC-5 §6.16). */
async function prin(p: Path, sa: number): Promise<Buffer> {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5e;
  cdb[1] = sa;
  cdb.writeUInt16BE(1024, 7);
  const r = await p.exec(cdb, { read: 1024 });
  assert.equal(r.status, GOOD, `PR IN: ${r.status === CHECK ? ascOf(r) : r.status}`);
  return r.data;
}

function keysOf(readKeys: Buffer): bigint[] {
  const n = readKeys.readUInt32BE(4) / 8;
  return Array.from({ length: n }, (_, i) => readKeys.readBigUInt64BE(8 + 8 * i)).sort((x, y) => (x < y ? -1 : 1));
}
