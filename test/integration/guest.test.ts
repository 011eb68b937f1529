import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ExecResult, run } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { listObjects } from '../harness/s3-target';
import { TargetProcess, TEST_IQN } from '../harness/target';

/**
 * The Linux kernel initiator (open-iscsi, iscsi_tcp, sd_mod) in a qemu guest under software
 * emulation, against an s3tgt whose LUN lives in a real RADOS Gateway. test/guest/run.sh boots
 * the guest and prints one `RESULT <check> PASS|FAIL key=value...` line per check; a host that
 * cannot boot it (no qemu, no open-iscsi...) fails here with run.sh's reason, never skips.
 */
const RUNNER = path.resolve(__dirname, '../../../test/guest/run.sh');

const CHAP = { user: 'guest-initiator', secret: 'guest-secret-1234' };
const MUTUAL = { user: 'guest-target', secret: 'target-secret-5678' };
const chapArgs = ['--chap-user', CHAP.user, '--chap-secret', CHAP.secret];
const mutualArgs = ['--mutual-user', MUTUAL.user, '--mutual-secret', MUTUAL.secret];
const chapYaml = `{ username: ${CHAP.user}, secret: ${CHAP.secret} }`;
const mutualYaml = `{ username: ${CHAP.user}, secret: ${CHAP.secret}, mutual: { username: ${MUTUAL.user}, secret: ${MUTUAL.secret} } }`;

interface Variant {
  readonly name: string;
  /** run.sh --mode: smoke, fs, fio, comma-separated (one boot runs them in order). */
  readonly modes: string;
  readonly runnerArgs?: readonly string[];
  /** YAML inside the target's mapping (4-space indent), e.g. `    chap: {...}`. */
  readonly targetYaml?: string;
  /** Top-level YAML, e.g. `discovery: { chap: {...} }`. */
  readonly extraYaml?: string;
  /** key=value pairs the named RESULT lines must carry. */
  readonly expect?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The target must refuse the login (iscsiadm's exit code in RESULT login rc=...). */
  readonly refused?: { readonly rc: string };
}

// One line per variant; every variant boots the guest once against a fresh bucket.
const VARIANTS: readonly Variant[] = [
  { name: 'no authentication: smoke, ext4 across a re-login, fio verify', modes: 'smoke,fs,fio' },
  {
    // The target requires CRC32C both ways (digests 'required') on normal sessions; discovery
    // (which open-iscsi cannot digest) goes through with discovery CHAP.
    name: 'mutual CHAP, discovery CHAP, CRC32C header and data digests required: smoke and ext4',
    modes: 'smoke,fs',
    runnerArgs: [...chapArgs, ...mutualArgs, '--discovery-chap', '--digest', 'crc32c'],
    targetYaml: `    chap: ${mutualYaml}`,
    extraYaml: `discovery: { chap: ${mutualYaml} }\niscsi: { headerDigest: required, dataDigest: required }`,
    expect: { digest: { header: 'CRC32C', data: 'CRC32C' }, login: { header_digest: 'CRC32C', data_digest: 'CRC32C' } },
  },
  // iscsiadm exit code 24: ISCSI_ERR_LOGIN_AUTH_FAILED.
  {
    name: 'a wrong CHAP secret is refused',
    modes: 'smoke',
    runnerArgs: ['--chap-user', CHAP.user, '--chap-secret', 'wrong-secret-9876'],
    targetYaml: `    chap: ${chapYaml}`,
    refused: { rc: '24' },
  },
];

const CHECKS_OF_MODE: Readonly<Record<string, readonly string[]>> = {
  smoke: ['smoke'],
  fs: ['fs-mkfs', 'fs-write', 'fs-logout', 'fs-login', 'fs-verify', 'fs-fsck'],
  fio: ['fio'],
};
const ALWAYS = ['discovery', 'login', 'disk', 'logout', 'kernel-log', 'guest', 'boot', 'host'];

interface Result {
  readonly check: string;
  readonly pass: boolean;
  readonly fields: ReadonlyMap<string, string>;
  readonly line: string;
}

function parseResults(stdout: string): Result[] {
  const out: Result[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^RESULT (\S+) (PASS|FAIL)(.*)$/.exec(line);
    if (!m) continue;
    const fields = new Map<string, string>();
    for (const kv of (m[3] ?? '').trim().split(/\s+/)) {
      const eq = kv.indexOf('=');
      if (eq > 0) fields.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    out.push({ check: m[1] ?? '', pass: m[2] === 'PASS', fields, line });
  }
  return out;
}

describe('Linux kernel initiator in a qemu guest, LUN in RGW', () => {
  let rgw: Rgw;
  before(async () => {
    rgw = await Rgw.start();
  });
  after(async () => {
    await rgw?.stop();
  });

  VARIANTS.forEach((v, i) => {
    it(v.name, async (t) => {
      const bucket = `guest${i}`;
      await rgw.createBucket(bucket);
      // A cache smaller than what the fs check writes: its verify reads come from RGW too.
      const target = new TargetProcess({
        env: rgw.env(),
        logLevel: 'info',
        extraYaml: `s3:\n  endpoint: ${rgw.endpoint}\n  bucket: ${bucket}\n  prefix: luns\n${v.extraYaml ?? ''}`,
        ...(v.targetYaml ? { targetYaml: v.targetYaml } : {}),
        lunsYaml: `      - lun: 0
        name: disk0
        size: 1GiB
        store: s3
        cache: { size: 16MiB, flushDelay: 50ms }`,
      });
      let r: ExecResult;
      try {
        await target.start();
        // run.sh bounds the guest itself (qemu under `timeout`, a guest watchdog); this limit
        // only catches a hung run.sh, whose SIGTERM trap still stops qemu.
        const args = ['--portal', `127.0.0.1:${target.port}`, '--target', TEST_IQN, '--lun', '0', '--mode', v.modes, ...(v.runnerArgs ?? [])];
        r = await run(RUNNER, args, { timeoutMs: 420_000 });
        assert.equal(await target.stop(), 0, `s3tgt stops gracefully, flushing to RGW:\n${target.output.slice(-4000)}`);
      } finally {
        await target.stop('SIGKILL');
        rmSync(target.dir, { recursive: true, force: true });
      }
      const report = `run.sh exited ${r.code}\n${r.stdout}\n${r.stderr}\n--- s3tgt log (tail) ---\n${target.output.slice(-4000)}`;
      const results = parseResults(r.stdout);
      for (const res of results) t.diagnostic(res.line);
      const seen = new Map(results.map((res) => [res.check, res]));

      if (v.refused) {
        assert.equal(r.code, 1, `a failed check (exit 1), not a setup error or a timeout\n${report}`);
        assert.equal(seen.get('login')?.pass, false, `the login must fail\n${report}`);
        assert.equal(seen.get('login')?.fields.get('rc'), v.refused.rc, `iscsiadm's exit code\n${report}`);
        assert.ok(!seen.has('disk'), `no disk without a session\n${report}`);
        return;
      }
      assert.equal(r.code, 0, report);
      assert.deepEqual(
        results.filter((res) => !res.pass).map((res) => res.line),
        [],
        report,
      );
      const wanted = [...ALWAYS, ...v.modes.split(',').flatMap((m) => CHECKS_OF_MODE[m] ?? [`unknown mode ${m}`])];
      for (const check of wanted) assert.ok(seen.has(check), `no RESULT ${check} line\n${report}`);
      for (const [check, fields] of Object.entries(v.expect ?? {})) {
        for (const [k, want] of Object.entries(fields)) assert.equal(seen.get(check)?.fields.get(k), want, `RESULT ${check} ${k}\n${report}`);
      }
      // What the guest wrote is in RGW as 1 MiB chunk objects, not only in the target's cache.
      const chunks = [...(await listObjects(rgw, bucket))].filter(([k]) => k.startsWith('luns/disk0/chunks/'));
      assert.ok(chunks.length > 0, `no chunk objects in bucket ${bucket}`);
      // Encoded LUNs (make test-codec) store compressed, sealed chunks: at most 1 MiB and the seal.
      if (process.env.S3TGT_TEST_CODEC) for (const [k, size] of chunks) assert.ok(size > 0 && size <= 1024 * 1024 + 512, `${k}: ${size} bytes`);
      else for (const [k, size] of chunks) assert.equal(size, 1024 * 1024, `${k} is 1 MiB`);
    });
  });
});

/**
 * Issue 14 acceptance: a journal LUN under the kernel initiator survives kill -9 of s3tgt in
 * the middle of fio. The guest prints "INFO crash_window_open" a few seconds into fio; the
 * target is killed and started again on the same port (it replays its journal first); the
 * initiator's session recovery reconnects and fio goes on verifying what it wrote.
 */
describe('Linux kernel initiator on a journal LUN: kill -9 of s3tgt during fio', () => {
  let rgw: Rgw;
  before(async () => {
    rgw = await Rgw.start();
  });
  after(async () => {
    await rgw?.stop();
  });

  it('fio verify goes on after the restart, fsck is clean, the files verify', async (t) => {
    await rgw.createBucket('guestcrash');
    const journalDir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-guest-journal-'));
    const target = new TargetProcess({
      env: rgw.env(),
      logLevel: 'info',
      extraYaml: `s3:\n  endpoint: ${rgw.endpoint}\n  bucket: guestcrash\n  prefix: luns\njournal: { dir: ${journalDir}, size: 512MiB }`,
      lunsYaml: `      - lun: 0
        name: disk0
        size: 1GiB
        store: s3
        cache: { size: 16MiB, mode: journal, flushDelay: 50ms }`,
    });
    let stdout = '';
    let killedAt = '';
    try {
      await target.start();
      const args = ['--portal', `127.0.0.1:${target.port}`, '--target', TEST_IQN, '--lun', '0', '--mode', 'crash', '--fio-seconds', '40'];
      const child = spawn(RUNNER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const watchdog = setTimeout(() => child.kill('SIGTERM'), 600_000);
      let restarting: Promise<void> | undefined;
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (!restarting && stdout.includes('INFO crash_window_open')) {
          restarting = (async () => {
            killedAt = new Date().toISOString();
            await target.stop('SIGKILL');
            await target.start();
          })();
        }
      });
      child.stderr.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      const code = await exited;
      clearTimeout(watchdog);
      await restarting;
      const report = `run.sh exited ${code}\n${stdout}\n--- s3tgt log (tail) ---\n${target.output.slice(-4000)}`;
      const results = parseResults(stdout);
      for (const res of results) t.diagnostic(res.line);
      assert.ok(killedAt, `the guest never opened the crash window\n${report}`);
      assert.equal(code, 0, report);
      const seen = new Map(results.map((res) => [res.check, res]));
      for (const check of ['crash-fio', 'crash-fsck', 'crash-files', 'kernel-log'])
        assert.equal(seen.get(check)?.pass, true, `RESULT ${check}\n${report}`);
      assert.match(target.output, /journal: replay(ing the records| done)/, 'the restart replayed the journal');
      assert.equal(await target.stop(), 0, `s3tgt stops gracefully, flushing to RGW:\n${target.output.slice(-4000)}`);
    } finally {
      await target.stop('SIGKILL');
      rmSync(target.dir, { recursive: true, force: true });
      rmSync(journalDir, { recursive: true, force: true });
    }
  });
});
