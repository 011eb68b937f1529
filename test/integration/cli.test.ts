import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, ftruncateSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ExecResult, run } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { listObjects } from '../harness/s3-target';
import { freePort } from '../harness/target';
import { tempDir } from '../lib/temp-dir';

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
const MiB = 1024 * 1024;

function cli(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<ExecResult> {
  return run(process.execPath, [MAIN, ...args], { env, timeoutMs });
}

/** Runs the CLI under a pseudo-terminal (util-linux `script`), as an admin at a shell would. */
function cliOnTerminal(args: readonly string[], env: NodeJS.ProcessEnv): Promise<ExecResult> {
  const cmd = [process.execPath, MAIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return run('script', ['-qec', cmd, '/dev/null'], { env: { ...env, COLUMNS: '100' }, timeoutMs: 120_000 });
}

describe('configuration errors name the file, line and key; check-config and serve exit 3 (issue 7 acceptance)', () => {
  const dir = tempDir('s3tgt-cfg-');
  const cases: Array<{ name: string; yaml: string; expect: RegExp }> = [
    {
      name: 'a typo in a key',
      yaml: 'portals: ["127.0.0.1:3299"]\ntargets:\n  - iqn: iqn.2026-11.io.s3tgt:x\n    luns:\n      - lun: 0\n        name: a\n        sise: 1GiB\n',
      expect: /key\.yaml:7:9: targets\[0\]\.luns\[0\]\.sise: unknown key "sise" \(did you mean "size"\?\)/,
    },
    {
      name: 'a wrong unit',
      yaml: 'targets:\n  - iqn: iqn.2026-11.io.s3tgt:x\n    luns:\n      - lun: 0\n        name: a\n        size: 10GB\n',
      expect: /unit\.yaml:6:15: targets\[0\]\.luns\[0\]\.size: unknown size unit "GB"/,
    },
    {
      name: 'a missing bucket',
      yaml: 's3:\n  endpoint: http://127.0.0.1:1\ntargets:\n  - iqn: iqn.2026-11.io.s3tgt:x\n    luns:\n      - { lun: 0, name: a, size: 1GiB, store: s3 }\n',
      expect: /bucket\.yaml:1:1: s3: required key "bucket" is missing/,
    },
    {
      name: 'more uploads while reading than the S3 concurrency',
      yaml: 's3:\n  bucket: bkt\n  concurrency: 8\n  uploadsWhileReading: 16\ntargets:\n  - iqn: iqn.2026-11.io.s3tgt:x\n    luns:\n      - { lun: 0, name: a, size: 1GiB, store: s3 }\n',
      expect: /concurrency\.yaml:4:\d+: s3\.uploadsWhileReading: 16 is more than s3\.concurrency \(8\)/,
    },
    {
      name: 'a LUN in journal mode without a journal',
      yaml: 'targets:\n  - iqn: iqn.2026-11.io.s3tgt:x\n    luns:\n      - lun: 0\n        name: a\n        size: 1GiB\n        cache: { mode: journal }\n',
      expect: /journal\.yaml:7:\d+: targets\[0\]\.luns\[0\]\.cache\.mode: this LUN uses the journal: the server needs a "journal:" section/,
    },
    {
      name: 'a snapshot LUN that does not name its LUN',
      yaml: 'targets:\n  - iqn: iqn.2026-11.io.s3tgt:x\n    luns:\n      - lun: 0\n        name: a\n        snapshot: nightly\n',
      expect: /LUN\.yaml:6:\d+: targets\[0\]\.luns\[0\]\.snapshot: snapshot must be LUN@SNAPSHOT/,
    },
    {
      name: 'a snapshot LUN with a size',
      yaml: 'targets:\n  - iqn: iqn.2026-11.io.s3tgt:x\n    luns:\n      - lun: 0\n        name: a\n        snapshot: d@n\n        size: 1GiB\n',
      expect: /size\.yaml:7:\d+: targets\[0\]\.luns\[0\]\.size: a snapshot LUN has the size of its snapshot: drop "size"/,
    },
  ];
  for (const c of cases) {
    const file = path.join(dir, `${c.name.split(' ').pop()}.yaml`);
    it(c.name, async () => {
      writeFileSync(file, c.yaml);
      const check = await cli(['check-config', file]);
      assert.equal(check.code, 3, check.stderr);
      assert.match(check.stderr, c.expect);
      const serve = await cli(['serve', '--config', file], {}, 20_000);
      assert.equal(serve.code, 3, serve.stderr);
      assert.match(serve.stderr, c.expect);
    });
  }

  it('a journal directory that does not exist stops the start, naming it (issue 14)', async () => {
    const file = path.join(dir, 'nojournal.yaml');
    const missing = path.join(dir, 'no-such-dir');
    writeFileSync(
      file,
      `portals: ["127.0.0.1:3298"]\nmetrics: { listen: false }\ndataDir: ${dir}/data\njournal: { dir: ${missing}, size: 64MiB }\ntargets:\n  - iqn: iqn.2026-11.io.s3tgt:x\n    luns:\n      - { lun: 0, name: a, size: 64MiB, cache: { mode: journal } }\n`,
    );
    const serve = await cli(['serve', '--config', file], {}, 20_000);
    assert.equal(serve.code, 1, serve.stderr);
    assert.ok(serve.stderr.includes(missing) || serve.stdout.includes(missing), `${serve.stdout}\n${serve.stderr}`);
  });

  it('a valid file passes check-config with exit 0', async () => {
    const r = await cli(['check-config', path.resolve(__dirname, '../../../config/s3tgt.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /OK/);
  });
});

describe('serve runs with the V8 options it needs (issue 18)', () => {
  const dir = tempDir('s3tgt-flags-');
  const file = path.join(dir, 'serve.yaml');

  /** Starts `cmd args`, collects its output until a LUN is ready (or 20 s), then stops it with SIGTERM. */
  async function serveOnce(cmd: string, args: readonly string[]): Promise<string> {
    const port = await freePort();
    writeFileSync(
      file,
      `portals: ["127.0.0.1:${port}"]\nmetrics: { listen: false }\ndataDir: ${dir}/data\nlog: { level: info, format: text }\ntargets:\n  - iqn: iqn.2026-11.io.s3tgt:x\n    luns:\n      - { lun: 0, name: a, size: 64MiB }\n`,
    );
    const p = spawn(cmd, [...args, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 20_000);
      const see = (d: Buffer): void => {
        out += d.toString();
        if (out.includes('LUN ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      p.stdout.on('data', see);
      p.stderr.on('data', see);
      exited.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    p.kill('SIGTERM');
    const killer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
    return out;
  }

  it('the s3tgt script starts node with them: no warning', async () => {
    assert.match(readFileSync(MAIN, 'utf8').split('\n')[0], /^#!\/usr\/bin\/env -S node .*--no-memory-reducer/);
    chmodSync(MAIN, 0o755);
    const out = await serveOnce(MAIN, []);
    assert.match(out, /LUN ready/);
    assert.doesNotMatch(out, /SERVE_V8_FLAGS_MISSING/);
  });

  it('started without them, serve says which and how to start it', async () => {
    const out = await serveOnce(process.execPath, [MAIN]);
    assert.match(out, /LUN ready/);
    assert.match(out, /SERVE_V8_FLAGS_MISSING.*--no-memory-reducer/s);
  });
});

describe('lun commands, import and export against RGW (issue 7 acceptance)', () => {
  let rgw: Rgw;
  const dir = tempDir('s3tgt-cli-');
  const config = path.join(dir, 's3tgt.yaml');
  const image = path.join(dir, 'sparse.img');
  const back = path.join(dir, 'back.img');
  before(async () => {
    rgw = await Rgw.start();
    await rgw.createBucket('cli');
    writeFileSync(
      config,
      `portals: ["127.0.0.1:3299"]
metrics: { listen: false }
s3: { endpoint: ${rgw.endpoint}, bucket: cli, prefix: luns }
lease: { ttl: 6s, renewInterval: 1s }
targets:
  - iqn: iqn.2026-11.io.s3tgt:cli
    luns:
      - { lun: 0, name: img, size: 256MiB, store: s3 }
      - { lun: 1, name: other, size: 64MiB, store: s3 }
`,
    );
    // A 256 MiB sparse image: data in a few places, the rest holes.
    const fd = openSync(image, 'w');
    ftruncateSync(fd, 256 * MiB);
    for (const off of [0, 5 * MiB + 4096, 100 * MiB, 177 * MiB - 512, 255 * MiB + 512 * 1024]) writeSync(fd, randomBytes(300_000), 0, 300_000, off);
    closeSync(fd);
  });
  after(() => rgw?.stop());

  it('lun create, list, info; create twice fails', async () => {
    const env = rgw.env();
    const c = await cli(['lun', 'create', 'img', '-c', config], env);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /created LUN "img": 256MiB, 512-byte blocks/);
    const again = await cli(['lun', 'create', 'img', '-c', config], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    const list = await cli(['lun', 'list', '-c', config], env);
    assert.match(list.stdout, /img\s+iqn\.2026-11\.io\.s3tgt:cli\/0\s+256MiB\s+512\s+idle/);
    assert.match(list.stdout, /other\s+.*not created/);
    const info = await cli(['lun', 'info', 'img', '-c', config, '--json'], env);
    const j = JSON.parse(info.stdout) as { volume: { sizeBytes: number }; chunks: number; lease: unknown };
    assert.equal(j.volume.sizeBytes, 256 * MiB);
    assert.equal(j.chunks, 0);
    assert.equal(j.lease, null);
  });

  it('import then export of a 256 MiB sparse image round-trips byte-identical, holes stay holes', async () => {
    const env = rgw.env();
    const imp = await cli(['import', 'img', image, '-c', config], env);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stdout, /imported 256MiB into "img".*: 6 chunks with data, 250 holes/);
    assert.doesNotMatch(imp.stderr, /\[=*>? *\]/, 'no progress bar without a terminal');
    const objects = await listObjects(rgw, 'cli', 'luns/img/chunks/');
    assert.equal(objects.size, 6, 'only chunks with data are stored');
    const exp = await cli(['export', 'img', back, '-c', config], env);
    assert.equal(exp.code, 0, exp.stderr);
    assert.ok(readFileSync(back).equals(readFileSync(image)), 'byte-identical');
    const st = statSync(back);
    assert.equal(st.size, 256 * MiB);
    assert.ok(st.blocks * 512 < 16 * MiB, `export is sparse (${st.blocks * 512} bytes allocated)`);
  });

  it('shows a progress bar when run under a terminal', async () => {
    const r = await cliOnTerminal(['export', 'img', back, '-c', config], rgw.env());
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /export img \[=+\] 100% \d+\/\d+ MiB/);
  });

  it('lun resize grows offline; never shrinks', async () => {
    const env = rgw.env();
    const grow = await cli(['lun', 'resize', 'img', '--size', '512MiB', '-c', config], env);
    assert.equal(grow.code, 0, grow.stderr);
    assert.match(grow.stdout, /256MiB -> 512MiB/);
    const shrink = await cli(['lun', 'resize', 'img', '--size', '128MiB', '-c', config], env);
    assert.equal(shrink.code, 2);
    assert.match(shrink.stderr, /never shrink/);
    // The image is still there, and the new space reads as zeros.
    const exp = await cli(['export', 'img', back, '-c', config], env);
    assert.equal(exp.code, 0, exp.stderr);
    const got = readFileSync(back);
    assert.equal(got.length, 512 * MiB);
    assert.ok(got.subarray(0, 256 * MiB).equals(readFileSync(image)));
    assert.ok(got.subarray(256 * MiB).every((b) => b === 0));
  });

  it('lun delete needs --yes, then removes every object of the LUN', async () => {
    const env = rgw.env();
    const no = await cli(['lun', 'delete', 'img', '-c', config], env);
    assert.equal(no.code, 2);
    const yes = await cli(['lun', 'delete', 'img', '-c', config, '--yes'], env);
    assert.equal(yes.code, 0, yes.stderr);
    assert.equal((await listObjects(rgw, 'cli', 'luns/img/')).size, 0);
  });

  it('--help everywhere', async () => {
    for (const args of [['--help'], ['lun', '--help'], ['lun', 'resize', '--help'], ['import', '--help'], ['check-config', '--help']]) {
      const r = await cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: s3tgt/);
    }
  });
});
