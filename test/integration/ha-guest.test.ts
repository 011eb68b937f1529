import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClusterPair, waitRole } from '../harness/cluster';
import { Rgw } from '../harness/rgw';
import { TEST_IQN } from '../harness/target';

/**
 * Issue 17 acceptance: the Linux kernel initiator in a qemu guest (test/guest, mode multipath)
 * with dm-multipath over both portals of an s3tgt HA pair (ClusterPair: LUN ha0, write-through,
 * preferred on node a, lease ttl 4 s / renew 500 ms / margin 1 s), ext4 and fio verify running.
 * When the guest says fio runs, node a is killed with kill -9: node b takes the lease over,
 * dm-multipath moves to its path, fio finishes with every block verified and fsck is clean.
 *
 * Kill -> first completed I/O: the guest's probe prints `INFO io n=N t0=T t1=T` (its uptime, s)
 * per completed 4 KiB O_DIRECT write + read. Each line's arrival on the host maps guest uptime
 * to the host clock (the smallest arrival - t1 seen, the console's latency being >= 0), which
 * places the kill on the guest's clock; the first probe completed after it, not counting one
 * that started before the kill and took under a second (node a answered it before dying), is
 * the first I/O after the takeover. It must come before the guest's no-path timeout
 * (replacement_timeout + no_path_retry x polling_interval, RESULT mp-map no_path_s).
 */
const RUNNER = path.resolve(__dirname, '../../../test/guest/run.sh');
const CHECKS = ['discovery', 'mp-login', 'mp-map', 'mp-fio', 'mp-io', 'mp-paths', 'mp-fsck', 'logout', 'kernel-log', 'guest', 'boot', 'host'];

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

/** Seconds from the kill to the first probe completed after it (see the comment at the top). */
function killToFirstIo(probes: readonly Probe[], killedAt: number): number | undefined {
  const before = probes.filter((p) => p.arrivedAt < killedAt);
  if (before.length === 0) return undefined;
  const offsetMs = Math.min(...before.map((p) => p.arrivedAt - p.t1 * 1000));
  const kill = (killedAt - offsetMs) / 1000;
  const first = probes.find((p) => p.t1 > kill && !(p.t0 < kill && p.t1 - p.t0 < 1));
  return first === undefined ? undefined : first.t1 - kill;
}

describe('HA: Linux dm-multipath over both nodes of a pair, kill -9 of the active node during fio (issue 17)', { timeout: 480_000 }, () => {
  let rgw: Rgw;
  before(async () => {
    rgw = await Rgw.start();
  });
  after(async () => {
    await rgw?.stop();
  });

  it('I/O goes on through node b after the takeover, fio verify passes, fsck is clean, kill -> first I/O under the no-path timeout', async (t) => {
    await rgw.createBucket('ha-guest');
    const pair = new ClusterPair(rgw, { bucket: 'ha-guest', logLevel: 'info' });
    const lines: string[] = [];
    const probes: Probe[] = [];
    let killedAt = 0;
    let takeoverMs = Number.NaN;
    let code: number | null = null;
    try {
      await pair.up();
      await waitRole(pair.b, 'ha0', 'standby');
      const args = ['--portal', `127.0.0.1:${pair.a.port}`, '--portal2', `127.0.0.1:${pair.b.port}`, '--target', TEST_IQN, '--mode', 'multipath'];
      const child = spawn(RUNNER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
      // run.sh bounds the guest itself (qemu under `timeout`, a guest watchdog); this only
      // catches a hung run.sh, whose SIGTERM trap still stops qemu.
      const watchdog = setTimeout(() => child.kill('SIGTERM'), 420_000);
      let killing: Promise<void> | undefined;
      let partial = '';
      child.stdout.on('data', (d: Buffer) => {
        const arrivedAt = Date.now();
        const parts = (partial + d.toString()).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) {
          lines.push(line);
          const io = /^INFO io n=\d+ t0=([\d.]+) t1=([\d.]+)$/.exec(line);
          if (io) probes.push({ t0: Number(io[1]), t1: Number(io[2]), arrivedAt });
          if (!killing && line.startsWith('INFO multipath_io_running')) {
            killing = (async () => {
              killedAt = Date.now();
              await pair.a.stop('SIGKILL');
              await waitRole(pair.b, 'ha0', 'active', 60_000);
              takeoverMs = Date.now() - killedAt;
            })();
          }
        }
      });
      child.stderr.on('data', (d: Buffer) => {
        lines.push(...d.toString().split('\n'));
      });
      code = await exited;
      clearTimeout(watchdog);
      await killing;
    } finally {
      await pair.down();
    }
    const report = `run.sh exited ${code}\n${lines.filter((l) => !l.startsWith('INFO io ')).join('\n')}\n--- node b log (tail) ---\n${pair.b.output.slice(-3000)}`;
    const results = parseResults(lines);
    for (const r of results) t.diagnostic(r.line);
    const seen = new Map(results.map((r) => [r.check, r]));
    assert.ok(killedAt > 0, `the guest never said fio was running\n${report}`);
    assert.equal(code, 0, report);
    assert.deepEqual(
      results.filter((r) => !r.pass).map((r) => r.line),
      [],
      report,
    );
    for (const check of CHECKS) assert.ok(seen.has(check), `no RESULT ${check} line\n${report}`);
    // At the end dm-multipath uses node b's path; node a's is failed.
    const paths = seen.get('mp-paths')?.fields;
    assert.match(paths?.get('b') ?? '', /^active\/ready\//, `node b's path serves I/O\n${report}`);
    assert.match(paths?.get('a') ?? '', /^failed\//, `node a's path is failed\n${report}`);

    const noPathS = Number(seen.get('mp-map')?.fields.get('no_path_s'));
    const firstIoS = killToFirstIo(probes, killedAt);
    console.log(
      `kill to first I/O: ${firstIoS?.toFixed(1)} s (node b active ${(takeoverMs / 1000).toFixed(1)} s after the kill; ` +
        `no-path timeout ${noPathS} s; longest probe wait in the guest ${seen.get('mp-io')?.fields.get('longest_wait_s')} s; ` +
        `probes ${probes.length}; fio ${seen.get('mp-fio')?.fields.get('written_mib')} MiB written, ${seen.get('mp-fio')?.fields.get('verified_mib')} MiB verified)`,
    );
    assert.ok(firstIoS !== undefined, `no probe completed after the kill\n${report}`);
    assert.ok(Number.isFinite(noPathS) && noPathS > 0, `RESULT mp-map no_path_s\n${report}`);
    assert.ok(firstIoS < noPathS, `kill -> first I/O ${firstIoS.toFixed(1)} s must stay under the no-path timeout ${noPathS} s\n${report}`);
  });
});
