import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ExecResult, run } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { listObjects, s3Target } from '../harness/s3-target';
import { type TargetProcess, TEST_IQN } from '../harness/target';
import { read10, SYNC_CACHE, TUR, write10, write10Fua } from '../lib/cdb';
import { tempDir } from '../lib/temp-dir';
import { reportLuns, unmapMany } from '../personality/cdbs';
import { type Outcome, Peer } from '../personality/peer';
import { esxi } from '../personality/profiles';

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const A = (i: number): number => 0x10 + i;
const B = (i: number): number => 0x80 + i;

/**
 * Offline snapshots against RGW (issue 16, first part): a snapshot taken with the CLI, then the
 * server overwrites chunks and is killed with -9 in the middle of its first overwrites; the
 * snapshot still exports byte for byte as it was, every acknowledged write is in the live LUN,
 * and a restore rolls the LUN back.
 */
describe('snapshots on RGW: copy-on-first-write through a kill -9, export, restore (issue 16)', () => {
  let rgw: Rgw;
  const dir = tempDir('s3tgt-snap-');
  before(async () => {
    rgw = await Rgw.start();
    await rgw.createBucket('snap');
  });
  /** Every target a test started: stopped even when an assertion failed halfway. */
  const targets: TargetProcess[] = [];
  const target = (o: Parameters<typeof s3Target>[1]): TargetProcess => {
    const t = s3Target(rgw, o);
    targets.push(t);
    return t;
  };
  after(async () => {
    for (const t of targets) await t.stop('SIGKILL');
    await rgw?.stop();
  });

  const cli = (t: { configFile: string }, args: readonly string[]): Promise<ExecResult> =>
    run(process.execPath, [MAIN, ...args, '--config', t.configFile], { env: rgw.env(), timeoutMs: 120_000 });

  /**
   * A target serving disk0 (32 MiB) from a new bucket, and an ESXi-like session on it that
   * wrote A(i) into each of the first 16 MiB.
   */
  const servedWithData = async (bucket: string): Promise<{ t: TargetProcess; p: Peer }> => {
    await rgw.createBucket(bucket);
    const t = target({ bucket, size: '32MiB', logLevel: 'info', cache: '{ size: 64MiB, flushDelay: 50ms }' });
    await t.start();
    const p = await Peer.connect(t.port, esxi(bucket));
    assert.equal(await p.login(TEST_IQN), 0);
    await p.execRetryUa(TUR);
    for (let i = 0; i < 16; i++) assert.equal((await p.exec(write10(i * 2048, 2048), { write: Buffer.alloc(MiB, A(i)) }, 30_000)).status, 0);
    return { t, p };
  };

  /** Adds a LUN entry to the target's configuration file (the target sees it on a reload). */
  const appendLun = (t: TargetProcess, entry: string): void => {
    writeFileSync(t.configFile, `${readFileSync(t.configFile, 'utf8').trimEnd()}\n      - ${entry}\n`);
  };

  /** SIGHUP, then waits until REPORT LUNS lists LUN 1. */
  const reload = async (t: TargetProcess, p: Peer): Promise<void> => {
    t.proc?.kill('SIGHUP');
    let seen = false;
    for (let k = 0; k < 100 && !seen; k++) {
      seen = (await p.execRetryUa(reportLuns(0), { read: 4096 })).data.readUInt32BE(0) === 16;
      if (!seen) await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(seen, `LUN 1 did not appear after the reload:\n${t.output.slice(-2000)}`);
  };

  /** A raw image file: the byte at the start of every MiB, and whether each MiB is uniform. */
  const chunksOf = (file: string): number[] => {
    const img = readFileSync(file);
    assert.equal(img.length, SIZE);
    const out: number[] = [];
    for (let c = 0; c < SIZE / MiB; c++) {
      const part = img.subarray(c * MiB, (c + 1) * MiB);
      assert.ok(
        part.every((x) => x === part[0]),
        `MiB ${c} is torn`,
      );
      out.push(part[0]);
    }
    return out;
  };

  it('the snapshot survives overwrites cut by kill -9; acknowledged writes are all live; export --snapshot and restore', async () => {
    const t = target({ bucket: 'snap', size: '32MiB', logLevel: 'info' });
    await t.start();
    const session = async (): Promise<Peer> => {
      const p = await Peer.connect(t.port, esxi('snap'));
      assert.equal(await p.login(TEST_IQN), 0);
      await p.execRetryUa(TUR);
      return p;
    };
    let c = await session();
    for (let i = 0; i < 16; i++) assert.equal((await c.exec(write10(i * 2048, 2048), { write: Buffer.alloc(MiB, A(i)) }, 30_000)).status, 0);
    assert.equal((await c.exec(SYNC_CACHE, {}, 30_000)).status, 0);
    // Served: a restore is refused by the server that serves the LUN.
    const busy = await cli(t, ['snapshot', 'restore', 'disk0', 'x', '--yes']);
    assert.equal(busy.code, 2, busy.stderr);
    assert.match(busy.stderr, /being served/);
    c.close();
    assert.equal(await t.stop(), 0);
    const made = await cli(t, ['snapshot', 'create', 'disk0', 'a']);
    assert.equal(made.code, 0, made.stderr);

    await t.start();
    c = await session();
    // Overwrite chunks 4..15 and write 20..23 (absent at the snapshot) with FUA, all at once;
    // kill -9 once half of them were acknowledged.
    const targets = [...Array.from({ length: 12 }, (_, k) => 4 + k), 20, 21, 22, 23];
    const acked: number[] = [];
    const enough = new Promise<void>((resolve) => {
      for (const i of targets) {
        void c.start(write10Fua(i * 2048, 2048), { write: Buffer.alloc(MiB, B(i)) }).done.then((r) => {
          if (r.status === 0) acked.push(i);
          if (acked.length === 8) resolve();
        });
      }
    });
    await enough;
    const ackedAtKill = [...acked];
    assert.equal(await t.stop('SIGKILL'), null, 'killed');

    const snapFile = path.join(dir, 'a.img');
    const exported = await cli(t, ['export', 'disk0', snapFile, '--snapshot', 'a']);
    assert.equal(exported.code, 0, exported.stderr);
    const expectA = Array.from({ length: 32 }, (_, i) => (i < 16 ? A(i) : 0));
    assert.deepEqual(chunksOf(snapFile), expectA, 'the snapshot is the LUN as it was');

    const liveFile = path.join(dir, 'live.img');
    assert.equal((await cli(t, ['export', 'disk0', liveFile])).code, 0);
    const live = chunksOf(liveFile);
    for (let i = 0; i < 32; i++) {
      if (ackedAtKill.includes(i)) assert.equal(live[i], B(i), `acknowledged write to MiB ${i} lost`);
      else if (targets.includes(i)) assert.ok([expectA[i], B(i)].includes(live[i]), `MiB ${i} holds ${live[i]}`);
      else assert.equal(live[i], expectA[i], `MiB ${i} changed without a write`);
    }
    const listed = await cli(t, ['snapshot', 'list', 'disk0', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as Array<{ name: string; preservedChunks: number }>;
    assert.equal(rows[0].name, 'a');
    assert.ok(rows[0].preservedChunks >= ackedAtKill.length, `${rows[0].preservedChunks} chunks preserved`);
    // Every object of the live LUN keeps its documented key.
    const objects = await listObjects(rgw, 'snap');
    assert.ok(objects.has('luns/disk0/chunks/0000000000000004'));

    assert.equal((await cli(t, ['snapshot', 'restore', 'disk0', 'a'])).code, 2, 'restore needs --yes');
    const restored = await cli(t, ['snapshot', 'restore', 'disk0', 'a', '--yes']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal((await cli(t, ['export', 'disk0', liveFile])).code, 0);
    assert.deepEqual(chunksOf(liveFile), expectA, 'rolled back');

    const refused = await cli(t, ['lun', 'delete', 'disk0', '--yes']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /has 1 snapshot\(s\) \(a\): delete them first/);
    assert.equal((await cli(t, ['snapshot', 'delete', 'disk0', 'a'])).code, 0);
    assert.equal((await cli(t, ['snapshot', 'list', 'disk0'])).stdout.trim(), 'no snapshots');
    const left = [...(await listObjects(rgw, 'snap')).keys()].filter((k) => k.includes('/snapshots/'));
    assert.deepEqual(left, []);
  });

  it('point in time under load: an online snapshot holds, for every block, the latest write acknowledged before the call and nothing issued after it', async () => {
    await rgw.createBucket('snap-live');
    const t = target({ bucket: 'snap-live', size: '32MiB', logLevel: 'info', cache: '{ size: 64MiB, flushDelay: 50ms }' });
    await t.start();
    const p = await Peer.connect(t.port, esxi('snap-live'));
    assert.equal(await p.login(TEST_IQN), 0);
    await p.execRetryUa(TUR);
    const BLOCKS = SIZE / 4096;
    interface W {
      readonly block: number;
      readonly seq: number;
      readonly issued: number;
      acked?: number;
    }
    const log: W[] = [];
    let seq = 0;
    let stop = false;
    let rng = 12345;
    const random = (): number => {
      rng = (rng * 1103515245 + 12345) & 0x7fffffff;
      return rng;
    };
    const worker = async (): Promise<void> => {
      while (!stop) {
        const w: W = { block: random() % BLOCKS, seq: ++seq, issued: performance.now() };
        log.push(w);
        const data = Buffer.alloc(4096);
        for (let o = 0; o < 4096; o += 4) data.writeUInt32BE(w.seq, o);
        const r = await p.exec(write10(w.block * 8, 8), { write: data }, 30_000);
        assert.equal(r.status, 0);
        w.acked = performance.now();
      }
    };
    const workers = Array.from({ length: 16 }, () => worker());
    await new Promise((r) => setTimeout(r, 1500));
    const callStart = performance.now();
    const made = await cli(t, ['snapshot', 'create', 'disk0', 'mid']);
    const callEnd = performance.now();
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /online, at a flush barrier/);
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await Promise.all(workers);
    p.close();
    assert.equal(await t.stop(), 0);
    const file = path.join(dir, 'mid.img');
    const exported = await cli(t, ['export', 'disk0', file, '--snapshot', 'mid']);
    assert.equal(exported.code, 0, exported.stderr);
    const img = readFileSync(file);
    const bySeq = new Map(log.map((w) => [w.seq, w]));
    const snap: number[] = [];
    for (let b = 0; b < BLOCKS; b++) {
      const s = img.readUInt32BE(b * 4096);
      for (let o = 0; o < 4096; o += 4) assert.equal(img.readUInt32BE(b * 4096 + o), s, `block ${b} is torn`);
      assert.ok(s === 0 || bySeq.get(s)?.block === b, `block ${b} holds write ${s}, which was not to it`);
      snap.push(s);
    }
    const before = log.filter((w) => w.acked !== undefined && w.acked < callStart).length;
    const after = log.filter((w) => w.issued > callEnd).length;
    assert.ok(before > 100 && after > 100, `writes before the call ${before}, after ${after}: the load ran across the snapshot`);
    let latestIssueIn = 0;
    for (const s of snap) if (s > 0) latestIssueIn = Math.max(latestIssueIn, (bySeq.get(s) as W).issued);
    for (const w of log) {
      // Nothing issued after the call returned is in the snapshot.
      if (snap[w.block] === w.seq) assert.ok(w.issued <= callEnd, `write ${w.seq} was issued after the snapshot call returned`);
      // Everything acknowledged before the call, or before a write the snapshot holds was issued, is in (or overwritten by a later one).
      if (w.acked !== undefined && (w.acked < callStart || w.acked < latestIssueIn)) {
        assert.ok(snap[w.block] >= w.seq, `block ${w.block}: acknowledged write ${w.seq} missing (snapshot holds ${snap[w.block]})`);
      }
    }
  });

  it('a snapshot served as a read-only LUN (added by reload) reads as it was while the LUN is rewritten; writes get DATA PROTECT; its deletion is refused', async () => {
    const { t, p } = await servedWithData('snap-lun');
    const made = await cli(t, ['snapshot', 'create', 'disk0', 'a']);
    assert.equal(made.code, 0, made.stderr);
    // Half of the chunks change before the snapshot LUN exists, the rest while it is read.
    for (let i = 0; i < 8; i++) assert.equal((await p.exec(write10(i * 2048, 2048), { write: Buffer.alloc(MiB, B(i)) }, 30_000)).status, 0);
    appendLun(t, '{ lun: 1, name: disk0-a, store: s3, snapshot: disk0@a }');
    await reload(t, p);
    const file = path.join(dir, 'lun-a.img');
    const convert = run('qemu-img', ['convert', '-O', 'raw', t.url(1), file], { timeoutMs: 120_000 });
    const rewrites = (async () => {
      // (The reload told every nexus the LUN inventory changed: a unit attention first.)
      for (let i = 8; i < 16; i++) assert.equal((await p.execRetryUa(write10(i * 2048, 2048), { write: Buffer.alloc(MiB, B(i)) }, 30_000)).status, 0);
      assert.equal((await p.execRetryUa(SYNC_CACHE, {}, 30_000)).status, 0);
    })();
    const [converted] = await Promise.all([convert, rewrites]);
    assert.equal(converted.code, 0, converted.stderr);
    assert.deepEqual(
      chunksOf(file),
      Array.from({ length: 32 }, (_, i) => (i < 16 ? A(i) : 0)),
      'qemu-img convert of the snapshot LUN equals the image at snapshot time',
    );
    const LUN1 = 0x0001_0000_0000_0000n;
    const w = await p.execRetryUa(write10(0, 8), { write: Buffer.alloc(4096, 1), lun: LUN1 });
    assert.deepEqual([w.status, w.sense[2] & 0x0f, w.sense[12]], [2, 7, 0x27], 'DATA PROTECT, WRITE PROTECTED');
    const metrics = await (await fetch(`http://127.0.0.1:${t.metricsPort}/metrics`)).text();
    const preserved = /^s3tgt_snapshot_preserved_chunks_total\{[^}]*name="disk0"\} (\d+)$/m.exec(metrics);
    assert.equal(Number(preserved?.[1]), 16, 'every overwritten chunk was preserved once');
    assert.match(metrics, /^s3tgt_snapshots\{[^}]*name="disk0"\} 1$/m, 'one snapshot');
    assert.match(metrics, new RegExp(`^s3tgt_snapshot_preserved_bytes_total\\{[^}]*name="disk0"\\} ${16 * MiB}$`, 'm'), '16 chunks of data');
    assert.match(metrics, /^s3tgt_store_requests_total\{backend="s3",op="copy",outcome="ok"\} \d+$/m);
    const refused = await cli(t, ['snapshot', 'delete', 'disk0', 'a']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /served as LUN disk0-a/);
    p.close();
    assert.equal(await t.stop(), 0);
  });

  it('a clone of a snapshot (added by reload): writes and UNMAP on either side leave the other and the snapshot byte-identical; delete refused until hydrated', async () => {
    const { t, p } = await servedWithData('snap-clone');
    const made = await cli(t, ['snapshot', 'create', 'disk0', 'gold']);
    assert.equal(made.code, 0, made.stderr);
    appendLun(t, '{ lun: 1, name: vm2, size: 32MiB, store: s3 }');
    const cloned = await cli(t, ['lun', 'clone', 'disk0@gold', 'vm2']);
    assert.equal(cloned.code, 0, cloned.stderr);
    await reload(t, p);
    const LUN1 = 0x0001_0000_0000_0000n;
    const C = (i: number): number => 0xc0 + i;
    const unmap = (lba: number, blocks: number, lun: bigint): Promise<Outcome> => {
      const u = unmapMany([[lba, blocks]]);
      return p.execRetryUa(u.cdb, { write: u.data, lun }, 30_000);
    };
    // Both sides at once: the parent rewrites 0-3 and unmaps 10-11; the clone writes 4-7 and unmaps 8-9.
    await Promise.all([
      (async () => {
        for (let i = 0; i < 4; i++)
          assert.equal((await p.execRetryUa(write10(i * 2048, 2048), { write: Buffer.alloc(MiB, B(i)) }, 30_000)).status, 0);
        assert.equal((await unmap(10 * 2048, 2 * 2048, 0n)).status, 0);
      })(),
      (async () => {
        for (let i = 4; i < 8; i++) {
          assert.equal((await p.execRetryUa(write10(i * 2048, 2048), { write: Buffer.alloc(MiB, C(i)), lun: LUN1 }, 30_000)).status, 0);
        }
        assert.equal((await unmap(8 * 2048, 2 * 2048, LUN1)).status, 0);
      })(),
    ]);
    // The clone through qemu's iSCSI driver, while it is served.
    const served = path.join(dir, 'clone-served.img');
    const convert = await run('qemu-img', ['convert', '-O', 'raw', t.url(1), served], { timeoutMs: 120_000 });
    assert.equal(convert.code, 0, convert.stderr);
    const cloneImage = Array.from({ length: 32 }, (_, i) => (i < 4 ? A(i) : i < 8 ? C(i) : i < 10 ? 0 : i < 16 ? A(i) : 0));
    assert.deepEqual(chunksOf(served), cloneImage, 'the clone: the snapshot, its own writes and unmaps, nothing of the parent after');
    const refused = await cli(t, ['snapshot', 'delete', 'disk0', 'gold']);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /has clones \(vm2\)/);
    p.close();
    assert.equal(await t.stop(), 0);

    const exported = async (name: string, snapshot?: string): Promise<number[]> => {
      const file = path.join(dir, `${name}-${snapshot ?? 'live'}.img`);
      const r = await cli(t, ['export', name, file, ...(snapshot ? ['--snapshot', snapshot] : [])]);
      assert.equal(r.code, 0, r.stderr);
      return chunksOf(file);
    };
    const gold = Array.from({ length: 32 }, (_, i) => (i < 16 ? A(i) : 0));
    assert.deepEqual(await exported('disk0', 'gold'), gold, 'the snapshot is byte-identical');
    assert.deepEqual(
      await exported('disk0'),
      Array.from({ length: 32 }, (_, i) => (i < 4 ? B(i) : i === 10 || i === 11 ? 0 : i < 16 ? A(i) : 0)),
      'the parent: its own writes, nothing of the clone',
    );
    assert.deepEqual(await exported('vm2'), cloneImage, 'the clone after a restart (from the listing)');
    const info = await cli(t, ['lun', 'info', 'vm2']);
    assert.match(info.stdout, /clone of: +disk0@gold/);
    const parentInfo = await cli(t, ['lun', 'info', 'disk0']);
    assert.match(parentInfo.stdout, /snapshot: +gold .*: 6 chunks preserved/);
    assert.match(parentInfo.stdout, /clones: +vm2/);

    const hydrated = await cli(t, ['lun', 'hydrate', 'vm2']);
    assert.equal(hydrated.code, 0, hydrated.stderr);
    assert.match(hydrated.stdout, /10 chunks copied/);
    const deleted = await cli(t, ['snapshot', 'delete', 'disk0', 'gold']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(await exported('vm2'), cloneImage, 'the hydrated clone no longer needs the snapshot');
    const left = await listObjects(rgw, 'snap-clone', 'luns/vm2/chunks/');
    assert.ok(
      [...left.values()].every((size) => size === MiB),
      'no hole marker is left in the independent LUN',
    );
  });

  it('a served clone hydrates in the background while both sides are written; then its snapshot is deleted online', async () => {
    const { t, p } = await servedWithData('snap-hydrate');
    assert.equal((await cli(t, ['snapshot', 'create', 'disk0', 'gold'])).code, 0);
    appendLun(t, '{ lun: 1, name: vm2, size: 32MiB, store: s3 }');
    const cloned = await cli(t, ['lun', 'clone', 'disk0@gold', 'vm2']);
    assert.equal(cloned.code, 0, cloned.stderr);
    await reload(t, p);
    const LUN1 = 0x0001_0000_0000_0000n;
    const started = await cli(t, ['lun', 'hydrate', 'vm2']);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /in the background/);
    const C = (i: number): number => 0xc0 + i;
    await Promise.all([
      (async () => {
        for (let i = 0; i < 8; i++) {
          assert.equal((await p.execRetryUa(write10(i * 2048, 2048), { write: Buffer.alloc(MiB, C(i)), lun: LUN1 }, 30_000)).status, 0);
        }
      })(),
      (async () => {
        for (let i = 8; i < 16; i++)
          assert.equal((await p.execRetryUa(write10(i * 2048, 2048), { write: Buffer.alloc(MiB, B(i)) }, 30_000)).status, 0);
      })(),
    ]);
    let independent = false;
    for (let k = 0; k < 120 && !independent; k++) {
      const info = await cli(t, ['lun', 'info', 'vm2']);
      assert.equal(info.code, 0, info.stderr);
      independent = !/clone of:/.test(info.stdout);
      if (!independent) await new Promise((res) => setTimeout(res, 250));
    }
    assert.ok(independent, 'the hydration finished');
    const deleted = await cli(t, ['snapshot', 'delete', 'disk0', 'gold']);
    assert.equal(deleted.code, 0, deleted.stderr);
    const read = async (lun: number): Promise<number[]> => {
      const file = path.join(dir, `hydrate-${lun}.img`);
      const r = await run('qemu-img', ['convert', '-O', 'raw', t.url(lun), file], { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      return chunksOf(file);
    };
    const cloneImage = Array.from({ length: 32 }, (_, i) => (i < 8 ? C(i) : i < 16 ? A(i) : 0));
    assert.deepEqual(await read(1), cloneImage, 'the hydrated clone, served');
    assert.deepEqual(
      await read(0),
      Array.from({ length: 32 }, (_, i) => (i < 8 ? A(i) : i < 16 ? B(i) : 0)),
      'the parent',
    );
    p.close();
    assert.equal(await t.stop(), 0);
    const file = path.join(dir, 'hydrated.img');
    assert.equal((await cli(t, ['export', 'vm2', file])).code, 0);
    assert.deepEqual(chunksOf(file), cloneImage, 'after a restart, as an independent LUN');
  });

  it('deleting the middle one of three snapshots (online, under writes) leaves the other two byte-identical', async () => {
    const { t, p } = await servedWithData('snap-middle');
    const C = (i: number): number => 0xc0 + i;
    const D = (i: number): number => 0xd0 + i;
    const writeAll = async (from: number, to: number, fill: (i: number) => number): Promise<void> => {
      for (let i = from; i < to; i++) assert.equal((await p.exec(write10(i * 2048, 2048), { write: Buffer.alloc(MiB, fill(i)) }, 30_000)).status, 0);
    };
    const snap = async (name: string): Promise<void> => {
      const r = await cli(t, ['snapshot', 'create', 'disk0', name]);
      assert.equal(r.code, 0, r.stderr);
    };
    await snap('s1');
    await writeAll(0, 8, B);
    await snap('s2');
    await writeAll(4, 12, C);
    const u = unmapMany([[12 * 2048, 2048]]);
    assert.equal((await p.exec(u.cdb, { write: u.data }, 30_000)).status, 0);
    await snap('s3');
    await writeAll(0, 20, D);
    const deleted = await cli(t, ['snapshot', 'delete', 'disk0', 's2']);
    assert.equal(deleted.code, 0, deleted.stderr);
    await writeAll(0, 4, A);
    assert.equal((await p.exec(SYNC_CACHE, {}, 30_000)).status, 0);
    p.close();
    assert.equal(await t.stop(), 0);
    const exported = async (snapshot: string): Promise<number[]> => {
      const file = path.join(dir, `middle-${snapshot}.img`);
      const r = await cli(t, ['export', 'disk0', file, '--snapshot', snapshot]);
      assert.equal(r.code, 0, r.stderr);
      return chunksOf(file);
    };
    assert.deepEqual(
      await exported('s1'),
      Array.from({ length: 32 }, (_, i) => (i < 16 ? A(i) : 0)),
      's1',
    );
    assert.deepEqual(
      await exported('s3'),
      Array.from({ length: 32 }, (_, i) => (i < 4 ? B(i) : i < 12 ? C(i) : i === 12 ? 0 : i < 16 ? A(i) : 0)),
      's3',
    );
    const list = await cli(t, ['snapshot', 'list', 'disk0']);
    assert.doesNotMatch(list.stdout, /^s2\t/m, 's2 is gone');
  });

  it('a forced restore of a served LUN: refused without --force; with it, every initiator gets 06/28/00 and reads the snapshot, not its cache', async () => {
    const { t, p } = await servedWithData('snap-restore');
    const made = await cli(t, ['snapshot', 'create', 'disk0', 'r']);
    assert.equal(made.code, 0, made.stderr);
    for (let i = 0; i < 8; i++) assert.equal((await p.exec(write10(i * 2048, 2048), { write: Buffer.alloc(MiB, B(i)) }, 30_000)).status, 0);
    const u = unmapMany([[8 * 2048, 2 * 2048]]);
    assert.equal((await p.exec(u.cdb, { write: u.data }, 30_000)).status, 0);
    assert.equal((await p.exec(write10(20 * 2048, 2048), { write: Buffer.alloc(MiB, 0x77) }, 30_000)).status, 0);
    /** The first byte of every MiB as the initiator reads it now (each MiB checked uniform). */
    const readAll = async (): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 32; i++) {
        const r = await p.exec(read10(i * 2048, 2048), { read: MiB }, 30_000);
        assert.equal(r.status, 0);
        assert.ok(
          r.data.every((x) => x === r.data[0]),
          `MiB ${i} is torn`,
        );
        out.push(r.data[0]);
      }
      return out;
    };
    const changed = Array.from({ length: 32 }, (_, i) => (i < 8 ? B(i) : i < 10 ? 0 : i < 16 ? A(i) : i === 20 ? 0x77 : 0));
    assert.deepEqual(await readAll(), changed, 'the changes, as cached');

    const refused = await cli(t, ['snapshot', 'restore', 'disk0', 'r', '--yes']);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /--force/);
    const restored = await cli(t, ['snapshot', 'restore', 'disk0', 'r', '--yes', '--force']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /online: 10 chunks copied back, 1 deleted/);
    const ua = await p.exec(TUR);
    assert.deepEqual([ua.status, ua.sense[2] & 0x0f, ua.sense[12], ua.sense[13]], [2, 6, 0x28, 0], 'UNIT ATTENTION, MEDIUM MAY HAVE CHANGED');
    const snapshotImage = Array.from({ length: 32 }, (_, i) => (i < 16 ? A(i) : 0));
    assert.deepEqual(await readAll(), snapshotImage, 'the served LUN reads as the snapshot');
    // The LUN goes on: a write after the restore, and the snapshot keeps its contents.
    assert.equal((await p.exec(write10(0, 2048), { write: Buffer.alloc(MiB, 0x55) }, 30_000)).status, 0);
    assert.equal((await p.exec(SYNC_CACHE, {}, 30_000)).status, 0);
    p.close();
    assert.equal(await t.stop(), 0);
    const file = path.join(dir, 'restore-r.img');
    const exported = await cli(t, ['export', 'disk0', file, '--snapshot', 'r']);
    assert.equal(exported.code, 0, exported.stderr);
    assert.deepEqual(chunksOf(file), snapshotImage, 'the snapshot is unchanged');
    const live = path.join(dir, 'restore-live.img');
    assert.equal((await cli(t, ['export', 'disk0', live])).code, 0);
    assert.deepEqual(chunksOf(live), [0x55, ...snapshotImage.slice(1)]);
  });
});
