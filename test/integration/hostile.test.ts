import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeScsiCommand, type TargetPdu } from '../../src/iscsi/pdu';
import { formatCampaign, fuzzCampaign, healthCheck } from '../fuzz/campaign';
import { peakRssMiB } from '../harness/rss';
import { TargetProcess, TEST_IQN } from '../harness/target';
import { read10, TUR, write10 } from '../lib/cdb';
import { TestInitiator } from '../lib/initiator';

/**
 * Issue 6: hostile input. A fuzz campaign (random and mutated PDUs from a corpus of valid
 * ones, bounded in count and time), then the bounds one by one: the CmdSN window, immediate
 * commands, an initiator that does not read, login timeouts.
 * The long campaign (>= 1e6 inputs) is `make fuzz-long` (test/fuzz/long-run.ts).
 */
const FUZZ_INPUTS = Number(process.env.FUZZ_INPUTS ?? 150_000);
const FUZZ_SECONDS = Number(process.env.FUZZ_SECONDS ?? 90);
const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Date.now() / 1000) % 1_000_000);

describe('fuzzing (issue 6 acceptance)', () => {
  const target = new TargetProcess({
    logLevel: 'error',
    lunsYaml: `      - lun: 0
        name: fuzz0
        size: 64MiB`,
  });
  before(() => target.start());
  after(() => target.stop());

  it(`survives ${FUZZ_INPUTS} random and mutated PDUs (or ${FUZZ_SECONDS} s) and answers a normal login afterwards`, async (t) => {
    const r = await fuzzCampaign(target, { inputs: FUZZ_INPUTS, seconds: FUZZ_SECONDS, seed: FUZZ_SEED, workers: 2 });
    const line = `${formatCampaign(r)} (seed ${FUZZ_SEED})`;
    t.diagnostic(line);
    process.stdout.write(`${line}\n`);
    assert.ok(r.aliveAfter, `the target died:\n${target.output.slice(-4000)}`);
    assert.ok(r.healthyAfter, `no normal login after fuzzing: ${r.healthError}`);
    assert.deepEqual(r.bugLines.slice(0, 10), [], 'the target logged internal errors (bugs)');
    assert.equal(r.report.malformedFromTarget, 0, 'the target sent bytes that are not iSCSI PDUs');
    assert.ok(r.report.inputs >= Math.min(FUZZ_INPUTS, 20_000), `only ${r.report.inputs} inputs in ${FUZZ_SECONDS} s`);
    assert.ok(r.report.ffpInputs > r.report.inputs / 2, 'most inputs reached the full feature phase');
    assert.ok(r.peakRssMiB < 512, `peak RSS ${r.peakRssMiB} MiB`);
  });
});

describe('bounds on what one initiator can make the target hold', () => {
  const target = new TargetProcess({
    logLevel: 'warn',
    extraYaml: 'iscsi: { queueDepth: 4, loginTimeout: 2s, maxBurstLength: 65536 }',
    lunsYaml: `      - lun: 0
        name: hostile0
        size: 1GiB`,
  });
  before(() => target.start());
  after(() => target.stop());

  async function session(): Promise<TestInitiator> {
    const c = await TestInitiator.connect(target.port);
    await c.login({
      target: TEST_IQN,
      isid: Buffer.from(
        `4000000${Math.floor(Math.random() * 0xfffff)
          .toString(16)
          .padStart(5, '0')}`,
        'hex',
      ),
    });
    await c.response(c.command(TUR));
    return c;
  }

  /** A WRITE whose data the target must solicit (InitialR2T=Yes): it stays open until answered. */
  function openWrite(c: TestInitiator, lba: number, immediate: boolean): number {
    const itt = c.itt++;
    c.send(
      encodeScsiCommand({
        immediate,
        final: true,
        read: false,
        write: true,
        attr: 1,
        lun: 0n,
        itt,
        expectedDataLength: 4096,
        cmdSN: c.cmdSN,
        expStatSN: c.expStatSN,
        cdb: write10(lba, 8),
        data: Buffer.alloc(0),
      }),
    );
    if (!immediate) c.cmdSN++;
    return itt;
  }

  async function next(c: TestInitiator, ms = 1500): Promise<TargetPdu | 'closed' | 'timeout'> {
    return c.recv(ms);
  }

  it('enforces the CmdSN window: a command past MaxCmdSN is ignored until a slot frees', async () => {
    const c = await session();
    const r2ts = new Map<number, { ttt: number }>();
    const itts = [0, 1, 2, 3].map((i) => openWrite(c, 1000 + i * 8, false));
    for (let i = 0; i < 4; i++) {
      const p = await next(c);
      assert.ok(typeof p !== 'string' && p.kind === 'r2t', `R2T ${i}: ${typeof p === 'string' ? p : p.kind}`);
      if (p.kind === 'r2t') {
        r2ts.set(p.itt, { ttt: p.ttt });
        assert.equal(p.maxCmdSN, (c.cmdSN - 1) >>> 0, 'window closed: MaxCmdSN = ExpCmdSN - 1');
      }
    }
    // The window is full: this TUR is outside [ExpCmdSN, MaxCmdSN] and must be dropped.
    const turItt = c.itt++;
    const turCmdSN = c.cmdSN;
    const tur = (): void =>
      c.send(
        encodeScsiCommand({
          immediate: false,
          final: true,
          read: false,
          write: false,
          attr: 1,
          lun: 0n,
          itt: turItt,
          expectedDataLength: 0,
          cmdSN: turCmdSN,
          expStatSN: c.expStatSN,
          cdb: Buffer.concat([TUR, Buffer.alloc(10)]),
          data: Buffer.alloc(0),
        }),
      );
    tur();
    assert.equal(await next(c, 1000), 'timeout', 'a command outside the window got an answer');
    // Finish one write: its slot frees and MaxCmdSN moves on.
    const first = r2ts.get(itts[0]) as { ttt: number };
    c.dataOut(itts[0], first.ttt, 0, Buffer.alloc(4096, 1), 0, true);
    const done = await next(c);
    assert.ok(typeof done !== 'string' && done.kind === 'scsi-response' && done.status === 0);
    // RFC 7143 §4.2.2.1: the dropped command is resent with its CmdSN and now runs.
    tur();
    const ok = await next(c);
    assert.ok(typeof ok !== 'string' && ok.kind === 'scsi-response' && ok.itt === turItt && ok.status === 0);
    c.close();
  });

  it('refuses immediate commands past twice the queue depth with Reject 0x06', async () => {
    const c = await session();
    for (let i = 0; i < 8; i++) openWrite(c, 2000 + i * 8, true);
    for (let i = 0; i < 8; i++) {
      const p = await next(c);
      assert.ok(typeof p !== 'string' && p.kind === 'r2t', `R2T ${i}: ${typeof p === 'string' ? p : p.kind}`);
    }
    openWrite(c, 3000, true);
    const p = await next(c);
    assert.ok(typeof p !== 'string' && p.kind === 'reject', `expected Reject, got ${typeof p === 'string' ? p : p.kind}`);
    if (p.kind === 'reject') assert.equal(p.reason, 0x06, 'Immediate command reject');
    c.close();
  });

  it('an initiator that sends READs and never reads does not make the target buffer without bound', async () => {
    const pid = target.proc?.pid as number;
    const before = peakRssMiB(pid);
    const c = await session();
    c.pauseReading();
    // 2 GiB of 1 MiB READs, CmdSN guessed forward as a hostile initiator would.
    for (let i = 0; i < 2048; i++) {
      c.command(read10((i % 1024) * 2048, 2048), { read: 1 << 20 });
      if (i % 64 === 63) await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 2000));
    const peak = peakRssMiB(pid);
    assert.ok(peak - before < 400, `peak RSS grew by ${(peak - before).toFixed(0)} MiB (from ${before.toFixed(0)})`);
    c.close();
    assert.ok(target.alive);
    await healthCheck(target.port);
  });

  it('drops a connection that never logs in, or sends half a header, after the login timeout', async () => {
    const started = Date.now();
    const idle = net.connect({ port: target.port, host: '127.0.0.1' });
    const half = net.connect({ port: target.port, host: '127.0.0.1' }, () => half.write(Buffer.alloc(20, 0x43)));
    const closed = (s: net.Socket): Promise<number> =>
      new Promise((r) => {
        s.on('error', () => undefined);
        s.on('close', () => r(Date.now() - started));
      });
    const [a, b] = await Promise.all([closed(idle), closed(half)]);
    for (const ms of [a, b]) assert.ok(ms >= 1500 && ms < 6000, `closed after ${ms} ms (login timeout 2 s)`);
  });

  it('closes the connection on a DataSegmentLength beyond MaxRecvDataSegmentLength, without reading it', async () => {
    const s = net.connect({ port: target.port, host: '127.0.0.1' });
    await new Promise((r) => s.once('connect', r));
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x43; // Login Request, immediate
    bhs[5] = 0xff; // DataSegmentLength 16 MiB - 1
    bhs[6] = 0xff;
    bhs[7] = 0xff;
    s.write(bhs);
    await new Promise<void>((r) => {
      s.on('error', () => undefined);
      s.on('close', () => r());
    });
    assert.ok(target.alive);
  });
});
