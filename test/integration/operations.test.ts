import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { s3Target } from '../harness/s3-target';
import { TargetProcess, TEST_IQN } from '../harness/target';
import { TUR } from '../lib/cdb';
import { TestInitiator } from '../lib/initiator';
import { tempDir } from '../lib/temp-dir';

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
const MiB = 1024 * 1024;
function cdb10(op: number, lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = op;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function metrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** The value of one sample line, or undefined. */
function sample(text: string, re: RegExp): number | undefined {
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('operations against RGW: metrics, lease, graceful stop (issue 7 acceptance)', () => {
  let rgw: Rgw;
  before(async () => {
    rgw = await Rgw.start();
  });
  after(() => rgw?.stop());

  it('after a qemu-img round trip, /metrics has non-zero counters for what was done', async () => {
    await rgw.createBucket('metrics');
    const target = s3Target(rgw, { bucket: 'metrics', logLevel: 'info' });
    await target.start();
    try {
      const dir = tempDir('s3tgt-metrics-');
      const img = path.join(dir, 'in.img');
      writeFileSync(img, randomBytes(16 * MiB));
      const w = await run('qemu-img', ['convert', '-n', '-t', 'writeback', '-f', 'raw', '-O', 'raw', img, target.url(0)], { timeoutMs: 120_000 });
      assert.equal(w.code, 0, w.stderr);
      const r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', target.url(0), path.join(dir, 'out.img')], { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      const text = await metrics(target.metricsPort);
      const L = `target="${TEST_IQN}",lun="0",name="disk0"`;
      const must = (what: string, re: RegExp): void => {
        const v = sample(text, re);
        assert.ok(v !== undefined && v > 0, `${what}: ${re} not found or zero`);
      };
      must('write commands', new RegExp(`^s3tgt_scsi_commands_total\\{${L},command="WRITE\\(1[06]\\)",status="good"\\} (\\d+)`, 'm'));
      must('read commands', new RegExp(`^s3tgt_scsi_commands_total\\{${L},command="READ\\(1[06]\\)",status="good"\\} (\\d+)`, 'm'));
      must('write latency histogram', new RegExp(`^s3tgt_scsi_command_seconds_count\\{${L},command="WRITE\\(1[06]\\)"\\} (\\d+)`, 'm'));
      must('SYNCHRONIZE CACHE', new RegExp(`^s3tgt_scsi_commands_total\\{${L},command="SYNCHRONIZE CACHE\\(1[06]\\)",status="good"\\} (\\d+)`, 'm'));
      assert.ok((sample(text, new RegExp(`^s3tgt_lun_written_bytes_total\\{${L}\\} (\\d+)`, 'm')) ?? 0) >= 16 * MiB);
      assert.ok((sample(text, new RegExp(`^s3tgt_lun_read_bytes_total\\{${L}\\} (\\d+)`, 'm')) ?? 0) >= 16 * MiB);
      must('S3 PUTs', /^s3tgt_store_requests_total\{backend="s3",op="put",outcome="ok"\} (\d+)/m);
      must('S3 GETs or HEADs', /^s3tgt_store_requests_total\{backend="s3",op="(?:get|head)",outcome="(?:ok|missing)"\} (\d+)/m);
      must('S3 latency', /^s3tgt_store_request_seconds_count\{backend="s3",op="put"\} (\d+)/m);
      must('S3 bytes sent', /^s3tgt_store_sent_bytes_total\{backend="s3"\} (\d+)/m);
      must('chunks uploaded', new RegExp(`^s3tgt_chunks_uploaded_total\\{${L}\\} (\\d+)`, 'm'));
      must('flush latency', new RegExp(`^s3tgt_flush_seconds_count\\{${L}\\} (\\d+)`, 'm'));
      must('cache activity', new RegExp(`^s3tgt_(?:cache_hits|cache_misses|hole_reads)_total\\{${L}\\} (\\d+)`, 'm'));
      must('logins', /^s3tgt_iscsi_logins_total (\d+)/m);
      for (const name of [
        's3tgt_cache_dirty_bytes',
        's3tgt_pool_in_flight',
        's3tgt_pool_queued',
        's3tgt_iscsi_sessions',
        's3tgt_iscsi_connections',
        's3tgt_store_retries_total',
        's3tgt_login_failures_total',
      ]) {
        assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exported`);
      }
    } finally {
      await target.stop();
    }
  });

  it('a second server on the same S3 LUN fails with a lease error while the first serves; after kill -9 of the first (same host, pid gone) it takes over at once (issue 13, defect 13)', async () => {
    await rgw.createBucket('lease');
    const lease = '{ ttl: 6s, renewInterval: 1s }';
    const first = s3Target(rgw, { bucket: 'lease', logLevel: 'info', lease });
    const second = s3Target(rgw, { bucket: 'lease', logLevel: 'info', lease });
    await first.start();
    try {
      await assert.rejects(second.start(), (e: Error) => /exited 5/.test(e.message) && /LUN is in use: its lease is held/.test(e.message));
      const inq = await run('iscsi-inq', [first.url(0)]);
      assert.equal(inq.code, 0, `the first server keeps serving: ${inq.stderr}`);
      await first.stop('SIGKILL');
      const t0 = Date.now();
      await second.start();
      const took = Date.now() - t0;
      // The holder recorded in the lease is provably this machine's dead process (same boot
      // id, pid gone): no need to wait out ttl + ttl/4 (7.5 s here).
      assert.ok(took < 5_000, `takeover took ${took} ms`);
      assert.match(second.output, /held by a process of this machine that no longer runs/);
      assert.match(second.output, /took over the LUN lease/);
      const inq2 = await run('iscsi-inq', [second.url(0)]);
      assert.equal(inq2.code, 0, inq2.stderr);
    } finally {
      await first.stop('SIGKILL');
      await second.stop();
    }
  });

  it('SIGTERM during a write load: exit 0, and every acknowledged write reads back after a restart', async () => {
    await rgw.createBucket('sigterm');
    // Nothing is flushed on its own (1 h delay): the flush at shutdown has to do it all.
    const target = s3Target(rgw, { bucket: 'sigterm', logLevel: 'info', cache: '{ size: 256MiB, flushDelay: 1h }' });
    await target.start();
    const c = await TestInitiator.connect(target.port);
    await c.login({ target: TEST_IQN });
    await c.response(c.command(TUR));
    const pattern = (i: number): Buffer => {
      const b = Buffer.alloc(4096, (i * 7 + 1) & 0xff);
      b.writeUInt32LE(i, 0);
      return b;
    };
    // 200 chunks' worth of LBAs (all of it fits the cache, dirty), one 4 KiB write each,
    // cycling with a period of 51,200 writes: two writes to one LBA are never in flight together.
    const lbaOf = (i: number): number => (i * 2056) % 409_600;
    /** LBA -> the last acknowledged write to it. */
    const latest = new Map<number, number>();
    const byItt = new Map<number, number>();
    let sent = 0;
    let acked = 0;
    let signalled = false;
    let askedToLogOut = false;
    const window = 16;
    for (;;) {
      // Like an initiator that ignores the request, it keeps its session; it only stops
      // starting new writes once asked to log out (AsyncEvent 1).
      while (!c.closed && !askedToLogOut && byItt.size < window && sent < 40_000) {
        const i = sent++;
        byItt.set(c.command(cdb10(0x2a, lbaOf(i), 8), { write: pattern(i) }), i);
      }
      if (!signalled && acked >= 2000) {
        signalled = true;
        target.proc?.kill('SIGTERM');
      }
      const p = await c.recv(20_000);
      if (p === 'closed' || p === 'timeout') break;
      if (p.kind === 'async-message') askedToLogOut = true;
      if (p.kind === 'scsi-response') {
        const i = byItt.get(p.itt);
        byItt.delete(p.itt);
        if (i !== undefined && p.status === 0) {
          acked++;
          const prev = latest.get(lbaOf(i));
          if (prev === undefined || prev < i) latest.set(lbaOf(i), i);
        }
      }
    }
    c.close();
    const code = await target.waitExit(60_000);
    assert.equal(code, 0, `exit code after SIGTERM:\n${target.output.slice(-3000)}`);
    assert.ok(signalled, `the load ended before the signal (${acked} writes acknowledged)`);
    assert.ok(askedToLogOut, 'the target asked the initiator to log out');
    await target.start();
    try {
      const r = await TestInitiator.connect(target.port);
      await r.login({ target: TEST_IQN });
      await r.response(r.command(TUR));
      for (const [lba, i] of latest) {
        const got = await r.response(r.command(cdb10(0x28, lba, 8), { read: 4096 }));
        assert.ok(got.data.equals(pattern(i)), `acknowledged write ${i} (LBA ${lba}) did not survive (found write ${got.data.readUInt32LE(0)})`);
      }
      r.close();
    } finally {
      await target.stop();
    }
  });
});

describe('SIGHUP reload and online resize, without dropping sessions (issue 7)', () => {
  const target = new TargetProcess({ logLevel: 'info' });
  before(() => target.start());
  after(() => target.stop());

  it('adds a LUN and an ACL; the logged-in session stays and sees REPORTED LUNS DATA HAS CHANGED', async () => {
    const c = await TestInitiator.connect(target.port);
    await c.login({ target: TEST_IQN, initiatorName: 'iqn.2026-11.ok:host' });
    await c.response(c.command(TUR));
    const before = readFileSync(target.configFile, 'utf8');
    writeFileSync(
      target.configFile,
      before.replace(
        '    luns:\n',
        '    acl: { initiators: ["iqn.2026-11.ok:*"] }\n    luns:\n      - lun: 1\n        name: added\n        size: 64MiB\n',
      ),
    );
    target.proc?.kill('SIGHUP');
    await sleep(1500);
    assert.match(target.output, /configuration reloaded/);
    const ua = await c.response(c.command(TUR));
    assert.equal(ua.status, 2);
    assert.equal(ua.sense[12], 0x3f, 'REPORTED LUNS DATA HAS CHANGED');
    assert.equal(ua.sense[13], 0x0e);
    const rl = Buffer.alloc(12);
    rl[0] = 0xa0;
    rl.writeUInt32BE(256, 6);
    const luns = await c.response(c.command(rl, { read: 256 }));
    assert.equal(luns.data.readUInt32BE(0), 16, 'two LUNs reported');
    // The new LUN greets the nexus with its power-on unit attention (SAM-5 §6.3.3), then reads.
    const first = await c.response(c.command(cdb10(0x28, 0, 8), { read: 4096, lun: 1n << 48n }));
    assert.equal(first.status, 2);
    assert.equal(first.sense[12], 0x29, 'POWER ON, RESET, OR BUS DEVICE RESET OCCURRED');
    const read = await c.response(c.command(cdb10(0x28, 0, 8), { read: 4096, lun: 1n << 48n }));
    assert.equal(read.status, 0);
    assert.equal(c.closed, false, 'the session was not dropped');
    const denied = await TestInitiator.connect(target.port);
    await assert.rejects(denied.login({ target: TEST_IQN, initiatorName: 'iqn.2026-11.other:host' }), /0x202/);
    denied.close();
    c.close();
  });

  it('a configuration that does not load leaves the running one as it was', async () => {
    const good = readFileSync(target.configFile, 'utf8');
    writeFileSync(target.configFile, `${good}\nbogus: 1\n`);
    target.proc?.kill('SIGHUP');
    await sleep(1000);
    assert.match(target.output, /reload failed; the running configuration is unchanged/);
    writeFileSync(target.configFile, good);
    const inq = await run('iscsi-inq', ['-i', 'iqn.2026-11.ok:h2', target.url(0)]);
    assert.equal(inq.code, 0, inq.stderr);
  });

  it('s3tgt lun resize grows a served LUN online: CAPACITY DATA HAS CHANGED, then the new capacity', async () => {
    const c = await TestInitiator.connect(target.port);
    await c.login({ target: TEST_IQN, initiatorName: 'iqn.2026-11.ok:resize' });
    await c.response(c.command(TUR));
    const r = await run(process.execPath, [MAIN, 'lun', 'resize', 'lun0', '--size', '2GiB', '-c', target.configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1GiB -> 2GiB \(online/);
    const ua = await c.response(c.command(TUR));
    assert.equal(ua.status, 2);
    assert.equal(ua.sense[12], 0x2a, 'CAPACITY DATA HAS CHANGED');
    assert.equal(ua.sense[13], 0x09);
    const rc16 = Buffer.alloc(16);
    rc16[0] = 0x9e;
    rc16[1] = 0x10;
    rc16.writeUInt32BE(32, 10);
    const cap = await c.response(c.command(rc16, { read: 32 }));
    assert.equal(cap.data.readBigUInt64BE(0), BigInt((2 * 1024 * MiB) / 512 - 1));
    c.close();
  });
});
