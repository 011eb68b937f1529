import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClusterPair, waitRole } from '../harness/cluster';
import { run } from '../harness/exec';
import { FaultProxy } from '../harness/fault-proxy';
import { block, GOOD, multipathWriter, Path, verify } from '../harness/multipath';
import { Rgw } from '../harness/rgw';
import { write10 } from '../lib/cdb';

/**
 * Issue 17, journal across failover (docs/ha.md, "Journal replication"): a journal LUN on an
 * HA pair over RGW, its uploads held back (uploadDelay 2 s, flushDelay 1 h) so the writes
 * acknowledged just before the kill -9 are in node a's journal and node b's replica only.
 * Node b must replay them before it serves: every acknowledged write is read back on node b.
 */

const JOURNAL_LUNS = `      - lun: 0
        name: ha0
        store: s3
        size: 256MiB
        preferred: a
        cache: { size: 32MiB, mode: journal, flushDelay: 1h }`;

const WRITERS = 16;
const LBAS_EACH = 256;

/** Polls `cond` every 200 ms for at most `ms`. */
async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

describe('HA: a journal LUN keeps every acknowledged write across a kill -9 (issue 17)', { timeout: 600_000 }, () => {
  let rgw: Rgw;
  before(async () => {
    rgw = await Rgw.start();
  });
  after(async () => {
    await rgw?.stop();
  });

  it(`kill -9 under ${WRITERS} concurrent writers: node b replays node a's replicated records before serving; every acknowledged write is read back`, async () => {
    await rgw.createBucket('ha-journal');
    const pair = new ClusterPair(rgw, { bucket: 'ha-journal', journal: true, lunsYaml: JOURNAL_LUNS, logLevel: 'info' });
    try {
      await pair.up();
      // Both links up and b's replica of a complete (a's watermark past its stream start).
      const complete = await until(async () => (await pair.b.metric('s3tgt_journal_replica_complete{peer="a"}')) === 1, 20_000);
      assert.ok(complete, `node b's replica of node a did not become complete:\n${pair.b.output.slice(-2000)}`);
      const pa = await Path.open(pair.a);
      const pb = await Path.open(pair.b);
      let stop = false;
      const writers = Array.from({ length: WRITERS }, (_, k) => multipathWriter([pa, pb], LBAS_EACH, () => stop, k * LBAS_EACH));
      await new Promise((r) => setTimeout(r, 3_000));
      const sent = await pair.a.metric('s3tgt_journal_replication_groups_total{outcome="acked"}');
      const localOnly = await pair.a.metric('s3tgt_journal_replication_groups_total{outcome="local-only"}');
      // The writers start no new write after the kill: the ones in flight are retried on node
      // b (as multipath does), the others were acknowledged by node a, most of them in the
      // last 2 s before the kill and so not in S3 yet (uploadDelay 2 s).
      await pair.a.stop('SIGKILL');
      stop = true;
      await waitRole(pair.b, 'ha0', 'active', 60_000);
      const ws = await Promise.all(writers);
      const errors = ws.flatMap((w) => w.errors);
      assert.deepEqual(errors, [], 'no I/O error across the takeover');
      const acked = new Map(ws.flatMap((w) => [...w.acked]));
      const replayed = await pair.b.metric('s3tgt_journal_replication_replayed_records_total');
      const unprotected = await pair.b.metric('s3tgt_cluster_unprotected_takeovers_total');
      console.log(
        `journal takeover: ${acked.size} LBAs acknowledged, ${sent} groups replicated before the kill (${localOnly} local-only), ${replayed} records replayed by node b, unprotected takeovers ${unprotected}`,
      );
      // Every acknowledged write first (what a user loses), then how it was kept.
      await verify(pb, acked);
      assert.ok(sent > 100, 'node a replicated its commit groups');
      assert.equal(localOnly, 0, 'no group was acknowledged local-only');
      assert.equal(unprotected, 0);
      assert.ok(replayed > 0, "node b applied node a's records from its replica (they were not in S3 yet)");
      pa.close();

      // Node a returns with the same records in its own journal: node b's lease lists their
      // holder as covered, so node a drops them instead of replaying them over node b's newer
      // writes. Writes go on through node b meanwhile, and the LUN moves back to node a.
      await pair.restart(pair.a);
      await waitRole(pair.a, 'ha0', 'standby', 30_000);
      // As a standby it drops them at once: they no longer hold its journal back, so node b's
      // replica of node a becomes complete (node a is protected again for LUNs it takes).
      assert.ok(
        await until(async () => (await pair.b.metric('s3tgt_journal_replica_complete{peer="a"}')) === 1, 10_000),
        "node b's replica of node a complete",
      );
      assert.match(pair.a.output, /dropped records a takeover by another node applied/, "node a dropped its journal's records a takeover applied");
      const pa2 = await Path.open(pair.a);
      stop = false;
      const again = Array.from({ length: WRITERS }, (_, k) => multipathWriter([pb, pa2], LBAS_EACH, () => stop, k * LBAS_EACH, 1_000_000));
      await new Promise((r) => setTimeout(r, 2_000));
      const cli = ['dist/src/cli/main.js', 'lun', 'move', 'ha0', 'a', '--config', pair.b.configFile];
      const moved = await run(process.execPath, cli, { timeoutMs: 120_000 });
      assert.equal(moved.code, 0, moved.stderr);
      await waitRole(pair.a, 'ha0', 'active', 10_000);
      await new Promise((r) => setTimeout(r, 1_500));
      stop = true;
      const ws2 = await Promise.all(again);
      assert.deepEqual(
        ws2.flatMap((w) => w.errors),
        [],
        'no I/O error while node a returned and took the LUN back',
      );
      for (const w of ws2) for (const [lba, gen] of w.acked) acked.set(lba, gen);
      assert.match(
        pair.a.output,
        /dropped records a takeover by another node applied/,
        "node a says it dropped its journal's records a takeover applied",
      );
      await verify(pa2, acked);
      console.log(
        `node a back: ${ws2.reduce((n, w) => n + w.acked.size, 0)} LBAs written meanwhile; ${moved.stdout.trim()}; all read back on node a`,
      );
      pa2.close();
      pb.close();
    } finally {
      await pair.down();
    }
  });

  it('the peer down: the lease says local-only before a write no peer holds is acknowledged; once the peer is back and has everything not in S3 the mark is cleared, and a kill -9 loses nothing', async () => {
    await rgw.createBucket('ha-journal-peer');
    const pair = new ClusterPair(rgw, { bucket: 'ha-journal-peer', journal: true, lunsYaml: JOURNAL_LUNS, logLevel: 'info' });
    try {
      await pair.up();
      await pair.b.stop('SIGKILL');
      const pa = await Path.open(pair.a);
      const paths = [pa];
      let stop = false;
      const writers = Array.from({ length: 4 }, (_, k) => multipathWriter(paths, LBAS_EACH, () => stop, k * LBAS_EACH));
      assert.ok(await until(async () => (await pair.a.metric('s3tgt_journal_replication_local_only_luns')) === 1, 10_000), 'the LUN went local-only');
      // The lease carries the mark before the first local-only acknowledgement is counted.
      const localOnlyGroups = () => pair.a.metric('s3tgt_journal_replication_groups_total{outcome="local-only"}');
      assert.ok(await until(async () => (await localOnlyGroups()) > 0, 10_000), 'writes were acknowledged local-only');
      const localOnly = await localOnlyGroups();
      assert.match(pair.a.output, /the LUN journals local-only until it is back/);
      // Node b returns: a new stream; the mark goes once node a's uploads pass its start.
      await pair.restart(pair.b);
      await waitRole(pair.b, 'ha0', 'standby', 30_000);
      const cleared = Date.now();
      assert.ok(
        await until(async () => (await pair.a.metric('s3tgt_journal_replication_local_only_luns')) === 0, 20_000),
        'the local-only mark was cleared',
      );
      const clearMs = Date.now() - cleared;
      paths.push(await Path.open(pair.b));
      await new Promise((r) => setTimeout(r, 1_000));
      await pair.a.stop('SIGKILL');
      stop = true;
      await waitRole(pair.b, 'ha0', 'active', 60_000);
      const ws = await Promise.all(writers);
      assert.deepEqual(
        ws.flatMap((w) => w.errors),
        [],
        'no I/O error',
      );
      const acked = new Map(ws.flatMap((w) => [...w.acked]));
      await verify(paths[1], acked);
      assert.equal(await pair.b.metric('s3tgt_cluster_unprotected_takeovers_total'), 0);
      console.log(
        `peer down: ${localOnly} groups acknowledged local-only; protected again ${clearMs} ms after node b was back; ${acked.size} LBAs read back after the kill`,
      );
      pa.close();
      paths[1].close();
    } finally {
      await pair.down();
    }
  });

  it('node b restarts while node a is idle, then node a is killed: the writes node b held before its restart are replayed (the new stream continues the old one)', async () => {
    await rgw.createBucket('ha-journal-restart');
    const pair = new ClusterPair(rgw, {
      bucket: 'ha-journal-restart',
      journal: true,
      journalUploadDelay: '60s',
      lunsYaml: JOURNAL_LUNS,
      logLevel: 'info',
    });
    try {
      await pair.up();
      assert.ok(await until(async () => (await pair.b.metric('s3tgt_journal_replica_complete{peer="a"}')) === 1, 20_000), 'replica complete');
      const pa = await Path.open(pair.a);
      const acked = new Map<number, number>();
      for (let lba = 0; lba < 256; lba++) {
        assert.equal((await pa.exec(write10(lba, 1), { write: block(lba, 7) })).status, GOOD);
        acked.set(lba, 7);
      }
      pa.close();
      // Node b restarts: a new stream, whose start is past those writes (not in S3 for 60 s).
      await pair.b.stop('SIGKILL');
      await pair.restart(pair.b);
      await waitRole(pair.b, 'ha0', 'standby', 30_000);
      assert.ok(
        await until(async () => (await pair.b.metric('s3tgt_journal_replication_connected{peer="a",direction="from"}')) === 1, 10_000),
        'node a reconnected',
      );
      assert.equal(await pair.b.metric('s3tgt_journal_replica_complete{peer="a"}'), 0, 'the new stream alone is incomplete');
      assert.equal(await pair.a.metric('s3tgt_journal_replication_local_only_luns'), 0, 'no write while node b was away');
      await pair.a.stop('SIGKILL');
      await waitRole(pair.b, 'ha0', 'active', 60_000);
      const pb = await Path.open(pair.b);
      await verify(pb, acked);
      assert.equal(await pair.b.metric('s3tgt_cluster_unprotected_takeovers_total'), 0);
      assert.ok((await pair.b.metric('s3tgt_journal_replication_replayed_records_total')) >= 256);
      pb.close();
    } finally {
      await pair.down();
    }
  });

  it("a node cut off from S3 acknowledges into its journal and the peer's replica only while its lease is known valid, then presents standby; every write it acknowledged is served by the peer; back on S3, it drops its superseded records", async () => {
    await rgw.createBucket('ha-journal-cut');
    const proxy = new FaultProxy(rgw.port);
    await proxy.start();
    const pair = new ClusterPair(rgw, {
      bucket: 'ha-journal-cut',
      journal: true,
      lunsYaml: JOURNAL_LUNS,
      logLevel: 'info',
      endpoints: { a: proxy.endpoint },
    });
    try {
      await pair.up();
      assert.ok(await until(async () => (await pair.b.metric('s3tgt_journal_replica_complete{peer="a"}')) === 1, 20_000), 'replica complete');
      const pa = await Path.open(pair.a);
      const pb = await Path.open(pair.b);
      let stop = false;
      const writers = Array.from({ length: 4 }, (_, k) => multipathWriter([pa, pb], LBAS_EACH, () => stop, k * LBAS_EACH));
      await new Promise((r) => setTimeout(r, 1_500));
      // Node a loses S3 (every request hangs) while initiators and node b still reach it.
      proxy.rule({ action: 'black-hole', match: /./ });
      const cutAt = Date.now();
      const before = await pair.a.metric('s3tgt_journal_replication_groups_total{outcome="acked"}');
      await waitRole(pair.b, 'ha0', 'active', 60_000);
      const takeoverS = (Date.now() - cutAt) / 1000;
      const during = (await pair.a.metric('s3tgt_journal_replication_groups_total{outcome="acked"}')) - before;
      const refused = await pair.a.metric('s3tgt_journal_replication_groups_total{outcome="refused"}');
      console.log(`S3 cut: node b active ${takeoverS.toFixed(1)} s after the cut`);
      await new Promise((r) => setTimeout(r, 1_500));
      stop = true;
      const ws = await Promise.all(writers);
      assert.deepEqual(
        ws.flatMap((w) => w.errors),
        [],
        `no I/O error\n${pair.b.output.slice(-6000)}`,
      );
      assert.ok(
        ws.every((w) => w.current === 1),
        'every writer moved to node b',
      );
      const acked = new Map(ws.flatMap((w) => [...w.acked]));
      await verify(pb, acked);
      console.log(
        `S3 cut with a journal LUN: node b active after ${takeoverS.toFixed(1)} s; node a acknowledged ${during} groups without S3 (all replicated) until its lease's validity ended, ${refused} refused by node b; ${acked.size} LBAs read back on node b`,
      );
      assert.ok(during > 0, 'node a acknowledged writes while cut off from S3 (journal and replica), until its gate closed');
      assert.equal(await pair.b.metric('s3tgt_cluster_unprotected_takeovers_total'), 0);
      // S3 comes back for node a: it learns it lost the lease, steps down, keeps what it could
      // not upload as recovered records, and at its next look at node b's lease drops them
      // (node b applied them from its replica): they no longer pin its journal.
      proxy.clearRules();
      await waitRole(pair.a, 'ha0', 'standby', 30_000);
      const kept = /journal records of the LUN not in S3 are kept[^\n]*"records":(\d+)/;
      const dropped = /dropped records a takeover by another node applied already[^\n]*"records":(\d+)/;
      assert.ok(await until(async () => dropped.test(pair.a.output), 10_000), `node a drops its superseded records:\n${pair.a.output.slice(-3000)}`);
      assert.equal(dropped.exec(pair.a.output)?.[1], kept.exec(pair.a.output)?.[1], 'all of those it kept');
      pa.close();
      pb.close();
    } finally {
      await pair.down();
      await proxy.stop();
    }
  });

  it('a takeover while the replica is incomplete is declared: an error log and s3tgt_cluster_unprotected_takeovers_total', async () => {
    await rgw.createBucket('ha-journal-unprot');
    const pair = new ClusterPair(rgw, { bucket: 'ha-journal-unprot', journal: true, lunsYaml: JOURNAL_LUNS, logLevel: 'info' });
    try {
      await pair.up();
      await pair.b.stop('SIGKILL');
      const pa = await Path.open(pair.a);
      for (let lba = 0; lba < 64; lba++) assert.equal((await pa.exec(write10(lba, 1), { write: block(lba, 1) })).status, GOOD);
      assert.equal(await pair.a.metric('s3tgt_journal_replication_local_only_luns'), 1, 'the LUN went local-only');
      await pair.a.stop('SIGKILL');
      await pair.restart(pair.b);
      await waitRole(pair.b, 'ha0', 'active', 60_000);
      assert.equal(await pair.b.metric('s3tgt_cluster_unprotected_takeovers_total'), 1);
      assert.match(pair.b.output, /taking the LUN over without its predecessor's journal/);
      pa.close();
    } finally {
      await pair.down();
    }
  });
});
