import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { listObjects } from '../harness/s3-target';
import { TargetProcess, TEST_IQN } from '../harness/target';

/**
 * The Linux kernel initiator (open-iscsi, iscsi_tcp, sd_mod) in a qemu guest under software
 * emulation, against an s3tgt whose LUN lives in a real RADOS Gateway: test/guest/run.sh boots
 * the guest and prints one `RESULT <check> PASS|FAIL key=value...` line per check.
 */
const RUNNER = path.resolve(__dirname, '../../../test/guest/run.sh');

interface Variant {
  readonly name: string;
  /** run.sh --mode: smoke, fs, fio, comma-separated (one boot runs them all). */
  readonly modes: string;
  readonly runnerArgs?: readonly string[];
  /** YAML inside the target's mapping (4-space indent), e.g. its CHAP settings. */
  readonly targetYaml?: string;
  /** key=value pairs that the named RESULT lines must carry. */
  readonly expect?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

// One line per variant. CHAP lines join once targets[].chap exists, for example:
//   { name: 'CHAP', modes: 'smoke', runnerArgs: ['--chap-user', 'u', '--chap-secret', 's'], targetYaml: '    chap: ...' },
const VARIANTS: readonly Variant[] = [
  { name: 'no authentication: smoke, ext4 across a re-login, fio verify', modes: 'smoke,fs,fio' },
  {
    name: 'CRC32C header and data digests',
    modes: 'smoke',
    runnerArgs: ['--digest', 'crc32c'],
    expect: { digest: { header: 'CRC32C', data: 'CRC32C' }, login: { header_digest: 'CRC32C', data_digest: 'CRC32C' } },
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
    out.push({ check: m[1] ?? '', pass: m[2] === 'PASS', fields });
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
        extraYaml: `s3:\n  endpoint: ${rgw.endpoint}\n  bucket: ${bucket}\n  prefix: luns`,
        ...(v.targetYaml ? { targetYaml: v.targetYaml } : {}),
        lunsYaml: `      - lun: 0
        name: disk0
        size: 1GiB
        store: s3
        cache: { size: 16MiB, flushDelay: 50ms }`,
      });
      await target.start();
      let r: Awaited<ReturnType<typeof run>>;
      try {
        r = await run(
          RUNNER,
          ['--portal', `127.0.0.1:${target.port}`, '--target', TEST_IQN, '--lun', '0', '--mode', v.modes, ...(v.runnerArgs ?? [])],
          {
            timeoutMs: 400_000,
          },
        );
      } finally {
        assert.equal(await target.stop(), 0, `s3tgt stops gracefully (flushing to RGW):\n${target.output.slice(-4000)}`);
      }
      const report = `run.sh exited ${r.code}\n${r.stdout}\n${r.stderr}\n--- s3tgt log (tail) ---\n${target.output.slice(-4000)}`;
      const results = parseResults(r.stdout);
      for (const res of results)
        t.diagnostic(`RESULT ${res.check} ${res.pass ? 'PASS' : 'FAIL'} ${[...res.fields].map(([k, x]) => `${k}=${x}`).join(' ')}`);
      assert.equal(r.code, 0, report);
      assert.deepEqual(
        results.filter((res) => !res.pass).map((res) => res.check),
        [],
        report,
      );
      const seen = new Map(results.map((res) => [res.check, res]));
      const wanted = [...ALWAYS, ...v.modes.split(',').flatMap((m) => CHECKS_OF_MODE[m] ?? [`unknown mode ${m}`])];
      for (const check of wanted) assert.ok(seen.has(check), `no RESULT ${check} line\n${report}`);
      for (const [check, fields] of Object.entries(v.expect ?? {})) {
        for (const [k, want] of Object.entries(fields)) assert.equal(seen.get(check)?.fields.get(k), want, `RESULT ${check} ${k}\n${report}`);
      }
      // What the guest wrote is in RGW as chunk objects, not only in the target's cache.
      const objects = await listObjects(rgw, bucket);
      assert.ok(
        [...objects.keys()].some((k) => k.includes('/chunks/')),
        `no chunk objects in bucket ${bucket}`,
      );
    });
  });
});
