import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClusterPair, waitRole } from '../harness/cluster';
import { run } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { TEST_IQN } from '../harness/target';

/**
 * Issue 17 acceptance: the Linux kernel initiator in a qemu guest (test/guest, mode multipath)
 * with dm-multipath over both portals of an s3tgt HA pair (ClusterPair: LUN ha0, write-through,
 * preferred on node a, lease ttl 4 s / renew 500 ms / margin 1 s), ext4 and fio verify running.
 * When the guest says fio runs, the host acts on the pair, each step while fio and the probe go on:
 *  1. `s3tgt lun move ha0 b`, then writes must reach node b (dm-multipath followed the LUN);
 *  2. `s3tgt lun move ha0 a`, then writes must reach node a again;
 *  3. kill -9 of node a: node b takes the lease over, dm-multipath moves to its path;
 *  4. node a restarted: it comes back as standby.
 * While node a is standby (after step 1, and after step 4 once iscsid has logged in again),
 * dm-multipath must not fail its path over and over: a standby that outranks the active group
 * in the alua prioritizer makes dm-multipath switch to it at every check (RTPG's PREF bit).
 * fio finishes with every block verified, no probe I/O fails, fsck is clean.
 *
 * Guest clock: the guest's probe prints `INFO io n=N t0=T t1=T` (its uptime, s) per completed
 * 4 KiB O_DIRECT write + read. Each line's arrival on the host maps guest uptime to the host
 * clock (the smallest arrival - t1 seen before a host event, the console's latency being >= 0),
 * which places host events (the kill, node a back) on the guest's clock, where dm-multipath's
 * path failures are logged (`INFO mp-fail t=T dev=MAJ:MIN`).
 * Kill -> first completed I/O: the first probe completed after the kill, not counting one that
 * started before it and took under a second (node a answered it before dying). It must come
 * before the guest's no-path timeout (replacement_timeout + no_path_retry x polling_interval,
 * RESULT mp-map no_path_s).
 */
const RUNNER = path.resolve(__dirname, '../../../test/guest/run.sh');
const CLI = path.resolve(__dirname, '../../src/cli/main.js');
const CHECKS = ['discovery', 'mp-login', 'mp-map', 'mp-fio', 'mp-io', 'mp-paths', 'mp-fsck', 'logout', 'kernel-log', 'guest', 'boot', 'host'];
/** How long I/O runs on a node after each hand-over before the next step. */
const DWELL_MS = 8_000;
/** fio's run time: the steps take about 30 s, then node a's return is watched. */
const FIO_SECONDS = 75;

interface Result {
  readonly check: string;
  readonly pass: boolean;
  readonly fields: ReadonlyMap<string, string>;
  readonly line: string;
}

/** `key=value` pairs of a console line. */
function fieldsOf(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const kv of text.trim().split(/\s+/)) {
    const eq = kv.indexOf('=');
    if (eq > 0) fields.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return fields;
}

function parseResults(lines: readonly string[]): Result[] {
  const out: Result[] = [];
  for (const line of lines) {
    const m = /^RESULT (\S+) (PASS|FAIL)(.*)$/.exec(line);
    if (m) out.push({ check: m[1] ?? '', pass: m[2] === 'PASS', fields: fieldsOf(m[3] ?? ''), line });
  }
  return out;
}

/** A probe completion: guest uptime at its start and end (s), host time of its line (ms). */
interface Probe {
  readonly t0: number;
  readonly t1: number;
  readonly arrivedAt: number;
}

/** A host time (ms) on the guest's clock (s), from the probes that arrived before it. */
function guestTime(probes: readonly Probe[], hostMs: number): number | undefined {
  const before = probes.filter((p) => p.arrivedAt < hostMs);
  if (before.length === 0) return undefined;
  const offsetMs = Math.min(...before.map((p) => p.arrivedAt - p.t1 * 1000));
  return (hostMs - offsetMs) / 1000;
}

/** Seconds from the kill to the first probe completed after it (see the comment at the top). */
function killToFirstIo(probes: readonly Probe[], killedAt: number): number | undefined {
  const kill = guestTime(probes, killedAt);
  if (kill === undefined) return undefined;
  const first = probes.find((p) => p.t1 > kill && !(p.t0 < kill && p.t1 - p.t0 < 1));
  return first === undefined ? undefined : first.t1 - kill;
}

/** The longest time without a probe completion between two host times (s, host clock). */
function longestPause(probes: readonly Probe[], fromMs: number, toMs: number): number {
  let last = fromMs;
  let longest = 0;
  for (const p of probes) {
    if (p.arrivedAt < fromMs || p.arrivedAt > toMs) continue;
    longest = Math.max(longest, p.arrivedAt - last);
    last = p.arrivedAt;
  }
  return Math.max(longest, toMs - last) / 1000;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the host did while fio ran, with the host time of each step. */
interface Steps {
  moveToB?: { out: string; at: number; activeAt: number; writtenOnB: number };
  moveToA?: { out: string; at: number; activeAt: number; writtenOnA: number };
  killedAt?: number;
  takeoverMs?: number;
  aStandbyAt?: number;
}

describe('HA: Linux dm-multipath over both nodes of a pair: lun move and back, kill -9 of the active node, its return, during fio (issue 17)', {
  timeout: 480_000,
}, () => {
  let rgw: Rgw;
  before(async () => {
    rgw = await Rgw.start();
  });
  after(async () => {
    await rgw?.stop();
  });

  it('I/O follows the LUN to node b and back, goes on through node b after a kill -9, node a returns without path flapping; fio verify passes, fsck is clean, kill -> first I/O under the no-path timeout', async (t) => {
    await rgw.createBucket('ha-guest');
    const pair = new ClusterPair(rgw, { bucket: 'ha-guest', logLevel: 'info' });
    const lines: string[] = [];
    const probes: Probe[] = [];
    const steps: Steps = {};
    let stepError: unknown;
    let code: number | null = null;
    const move = async (to: 'a' | 'b'): Promise<string> => {
      const from = to === 'b' ? pair.a : pair.b;
      const r = await run(process.execPath, [CLI, 'lun', 'move', 'ha0', to, '--config', from.configFile], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, `lun move ha0 ${to}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`moved "ha0" from node ${to === 'b' ? 'a' : 'b'} to node ${to}`));
      return r.stdout.trim();
    };
    /** Bytes written to `node` for the LUN during DWELL_MS. */
    const dwell = async (node: typeof pair.a): Promise<number> => {
      const before = await node.metric('s3tgt_lun_written_bytes_total{name="ha0"}');
      await sleep(DWELL_MS);
      return (await node.metric('s3tgt_lun_written_bytes_total{name="ha0"}')) - before;
    };
    const act = async (): Promise<void> => {
      let at = Date.now();
      let out = await move('b');
      await waitRole(pair.b, 'ha0', 'active', 10_000);
      steps.moveToB = { out, at, activeAt: Date.now(), writtenOnB: await dwell(pair.b) };
      at = Date.now();
      out = await move('a');
      await waitRole(pair.a, 'ha0', 'active', 10_000);
      steps.moveToA = { out, at, activeAt: Date.now(), writtenOnA: await dwell(pair.a) };
      const killedAt = Date.now();
      steps.killedAt = killedAt;
      await pair.a.stop('SIGKILL');
      await waitRole(pair.b, 'ha0', 'active', 60_000);
      steps.takeoverMs = Date.now() - killedAt;
      await pair.restart(pair.a);
      await waitRole(pair.a, 'ha0', 'standby', 30_000);
      steps.aStandbyAt = Date.now();
    };
    try {
      await pair.up();
      await waitRole(pair.b, 'ha0', 'standby');
      const args = [
        '--portal',
        `127.0.0.1:${pair.a.port}`,
        '--portal2',
        `127.0.0.1:${pair.b.port}`,
        '--target',
        TEST_IQN,
        '--mode',
        'multipath',
        '--fio-seconds',
        String(FIO_SECONDS),
      ];
      const child = spawn(RUNNER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
      // run.sh bounds the guest itself (qemu under `timeout`, a guest watchdog); this only
      // catches a hung run.sh, whose SIGTERM trap still stops qemu.
      const watchdog = setTimeout(() => child.kill('SIGTERM'), 420_000);
      let acting: Promise<void> | undefined;
      let partial = '';
      child.stdout.on('data', (d: Buffer) => {
        const arrivedAt = Date.now();
        const parts = (partial + d.toString()).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) {
          lines.push(line);
          const io = /^INFO io n=\d+ t0=([\d.]+) t1=([\d.]+)$/.exec(line);
          if (io) probes.push({ t0: Number(io[1]), t1: Number(io[2]), arrivedAt });
          if (!acting && line.startsWith('INFO multipath_io_running')) {
            acting = act().catch((e: unknown) => {
              stepError = e;
            });
          }
        }
      });
      child.stderr.on('data', (d: Buffer) => {
        lines.push(...d.toString().split('\n'));
      });
      code = await exited;
      clearTimeout(watchdog);
      await acting;
    } finally {
      await pair.down();
    }
    const report =
      `run.sh exited ${code}\n${lines.filter((l) => !l.startsWith('INFO io ')).join('\n')}\n` +
      `--- node a log (tail) ---\n${pair.a.output.slice(-2000)}\n--- node b log (tail) ---\n${pair.b.output.slice(-3000)}`;
    const results = parseResults(lines);
    for (const r of results) t.diagnostic(r.line);
    const seen = new Map(results.map((r) => [r.check, r]));
    assert.ok(steps.moveToB !== undefined || stepError !== undefined, `the guest never said fio was running\n${report}`);
    assert.equal(stepError, undefined, `${String(stepError)}\n${report}`);
    const { moveToB, moveToA, killedAt, aStandbyAt } = steps;
    assert.ok(moveToB && moveToA && killedAt !== undefined && aStandbyAt !== undefined);
    assert.equal(code, 0, report);
    assert.deepEqual(
      results.filter((r) => !r.pass).map((r) => r.line),
      [],
      report,
    );
    for (const check of CHECKS) assert.ok(seen.has(check), `no RESULT ${check} line\n${report}`);
    assert.ok(moveToB.writtenOnB > 0, `after lun move to b, writes reach node b\n${report}`);
    assert.ok(moveToA.writtenOnA > 0, `after lun move back to a, writes reach node a\n${report}`);

    // At the end dm-multipath uses node b's path.
    const paths = seen.get('mp-paths')?.fields;
    assert.match(paths?.get('b') ?? '', /^active\/ready\//, `node b's path serves I/O\n${report}`);
    const aDev = paths?.get('a_dev');
    assert.ok(aDev, report);
    const events = (kind: string) =>
      lines
        .map((l) => new RegExp(`^INFO mp-${kind} t=([\\d.]+) dev=(\\S+)$`).exec(l))
        .filter((m) => m !== null)
        .filter((m) => m[2] === aDev)
        .map((m) => Number(m[1]));
    const aFailures = events('fail');
    const onGuest = (hostMs: number): number => {
      const g = guestTime(probes, hostMs);
      assert.ok(g !== undefined, `no probe before host time ${hostMs}\n${report}`);
      return g;
    };

    // While the LUN is on node b, node a's port is standby and must rank below node b's: its
    // path fails when the LUN leaves (I/O already sent there gets 02/04/0B) and once more when
    // multipathd reinstates it with the priority it had a moment before (1-2 failures in our
    // runs); then no I/O goes there. A standby that outranks the active group in Linux's alua
    // prioritizer (RTPG's PREF bit on a standby group: +80) makes dm-multipath switch to it at
    // every check: 5-6 failures in this window then.
    const onB = aFailures.filter((t) => t >= onGuest(moveToB.at) && t <= onGuest(moveToA.at));
    assert.ok(onB.length <= 3, `node a's path failed ${onB.length} times while node b held the LUN (${onB.join(', ')}): flapping\n${report}`);

    // Node a back as standby after the kill: iscsid logs in again after its own retries (2 to
    // more than 50 s here). Then the same holds; a dead path keeps the priority it had when it
    // died, so I/O may reach the path when it is reinstated: once, or twice when multipathd
    // reinstates it again at its next check (1 s) before the priority is refreshed (seen once
    // in a CI run, 2026-12-04: failures at 48.9 and 49.9 s). Flapping fails it at every check.
    const aBack = onGuest(aStandbyAt);
    const back = events('reinstate').find((t) => t > aBack);
    const lastIo = probes[probes.length - 1]?.t1 ?? 0;
    let returnNote = "node a's path not back before the end of fio: not observed";
    if (back !== undefined && lastIo - back >= 5) {
      const after = aFailures.filter((t) => t > back);
      assert.ok(
        after.length <= 2,
        `node a's path failed ${after.length} times after it came back as standby (${after.join(', ')}): flapping\n${report}`,
      );
      const [, aChecker, aPrio] = (paths?.get('a') ?? '').split('/');
      const bPrio = (paths?.get('b') ?? '').split('/')[2];
      assert.equal(aChecker, 'ready', report);
      assert.ok(Number(aPrio) < Number(bPrio), `node a (standby, prio ${aPrio}) ranks below node b (active, prio ${bPrio})\n${report}`);
      returnNote = `node a's path back ${(back - aBack).toFixed(1)} s after node a, ${(lastIo - back).toFixed(1)} s of I/O after that, ${after.length} failure(s)`;
    }

    const noPathS = Number(seen.get('mp-map')?.fields.get('no_path_s'));
    const firstIoS = killToFirstIo(probes, killedAt);
    console.log(
      `${moveToB.out}; I/O paused at most ${longestPause(probes, moveToB.at, moveToB.activeAt + DWELL_MS).toFixed(1)} s, ` +
        `${(moveToB.writtenOnB / 2 ** 20).toFixed(1)} MiB written on b in ${DWELL_MS / 1000} s, node a's path failed ${onB.length} time(s)`,
    );
    console.log(
      `${moveToA.out}; I/O paused at most ${longestPause(probes, moveToA.at, moveToA.activeAt + DWELL_MS).toFixed(1)} s, ` +
        `${(moveToA.writtenOnA / 2 ** 20).toFixed(1)} MiB written on a in ${DWELL_MS / 1000} s`,
    );
    console.log(
      `kill to first I/O: ${firstIoS?.toFixed(1)} s (node b active ${((steps.takeoverMs ?? Number.NaN) / 1000).toFixed(1)} s after the kill; ` +
        `no-path timeout ${noPathS} s; longest probe wait in the guest ${seen.get('mp-io')?.fields.get('longest_wait_s')} s; ` +
        `probes ${probes.length}; fio ${seen.get('mp-fio')?.fields.get('written_mib')} MiB written, ${seen.get('mp-fio')?.fields.get('verified_mib')} MiB verified); ` +
        `node a standby again ${((aStandbyAt - killedAt) / 1000).toFixed(1)} s after the kill; ${returnNote}`,
    );
    assert.ok(firstIoS !== undefined, `no probe completed after the kill\n${report}`);
    assert.ok(Number.isFinite(noPathS) && noPathS > 0, `RESULT mp-map no_path_s\n${report}`);
    assert.ok(firstIoS < noPathS, `kill -> first I/O ${firstIoS.toFixed(1)} s must stay under the no-path timeout ${noPathS} s\n${report}`);
  });
});
