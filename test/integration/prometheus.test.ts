import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClusterPair } from '../harness/cluster';
import { mustRun } from '../harness/exec';
import { Rgw } from '../harness/rgw';
import { freePort } from '../harness/target';

const MiB = 1024 * 1024;
const DASHBOARD = path.resolve(__dirname, '../../../config/grafana-dashboard.json');

interface Dashboard {
  readonly templating: { readonly list: ReadonlyArray<{ readonly name: string; readonly query?: string }> };
  readonly panels: ReadonlyArray<{ readonly title: string; readonly targets?: ReadonlyArray<{ readonly expr: string }> }>;
}

/** A panel's query as Grafana sends it with every target and LUN selected ("All") and a 1 m rate interval. */
const concrete = (expr: string): string => expr.replaceAll('$__rate_interval', '1m').replaceAll('$target', '.*').replaceAll('$lun', '.*');

/** Debian's Prometheus server on loopback, scraping the given endpoints every second. */
class Prometheus {
  private proc: ChildProcess | undefined;
  output = '';
  port = 0;
  constructor(readonly dir: string) {}

  async start(targets: readonly string[]): Promise<void> {
    this.port = await freePort();
    const config = path.join(this.dir, 'prometheus.yml');
    writeFileSync(
      config,
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: s3tgt
    static_configs:
      - targets: [${targets.map((t) => `"${t}"`).join(', ')}]
`,
    );
    this.proc = spawn(
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${path.join(this.dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${this.port}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20_000);
    });
    for (let i = 0; i < 300; i++) {
      const r = await fetch(`http://127.0.0.1:${this.port}/-/ready`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
      if (r?.ok) return;
      if (this.proc.exitCode !== null) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`prometheus did not become ready:\n${this.output}`);
  }

  /** An instant query's result vector (the HTTP API, /api/v1/query). */
  async query(q: string): Promise<unknown[]> {
    const r = await fetch(`http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await r.json()) as { status: string; error?: string; data?: { result: unknown[] } };
    if (body.status !== 'success') throw new Error(`${q}: ${body.error}`);
    return body.data?.result ?? [];
  }

  /** The values a label takes on the series of a selector (Grafana's label_values()). */
  async labelValues(selector: string, label: string): Promise<string[]> {
    const r = await fetch(`http://127.0.0.1:${this.port}/api/v1/label/${label}/values?match[]=${encodeURIComponent(selector)}`, {
      signal: AbortSignal.timeout(10_000),
    });
    return ((await r.json()) as { data: string[] }).data;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

describe('a real Prometheus scrapes s3tgt; every query of the Grafana dashboard returns data (issue 19 acceptance)', () => {
  let rgw: Rgw;
  let pair: ClusterPair;
  let prom: Prometheus;
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-prom-'));
  before(async () => {
    rgw = await Rgw.start();
    await rgw.createBucket('prom');
    // A cluster with journal LUNs, so that the HA and journal panels have series; LUN 0 is
    // compressed and encrypted, LUN 1 write-back.
    pair = new ClusterPair(rgw, {
      bucket: 'prom',
      journal: true,
      logLevel: 'warn',
      lease: '{ ttl: 20s, renewInterval: 3s }',
      lunsYaml: `      - lun: 0
        name: ha0
        store: s3
        size: 256MiB
        preferred: a
        cache: { size: 32MiB, mode: journal }
        compression: zstd
        encryption: { keyId: k1, key: "${'a7'.repeat(32)}" }
      - lun: 1
        name: ha1
        store: s3
        size: 64MiB
        preferred: a
        cache: { size: 32MiB, mode: write-back }`,
    });
    await pair.up();
    prom = new Prometheus(dir);
    await prom.start([pair.a, pair.b].map((t) => `127.0.0.1:${t.metricsPort}`));
  });
  after(async () => {
    await prom?.stop();
    await pair?.down();
    await rgw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after a qemu-img round trip, every panel query and template variable has data', async () => {
    const image = path.join(dir, 'in.img');
    writeFileSync(image, randomBytes(32 * MiB));
    for (const lun of [0, 1]) {
      await mustRun('qemu-img', ['convert', '-t', 'writeback', '-n', '-f', 'raw', '-O', 'raw', image, pair.url(pair.a, lun)]);
      const back = path.join(dir, `back${lun}.img`);
      await mustRun('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', 'count=32', `if=${pair.url(pair.a, lun)}`, `of=${back}`]);
      assert.ok(readFileSync(back).equals(readFileSync(image)), `LUN ${lun} round trip`);
    }
    // Both nodes scraped, and at least a few samples after the I/O for the rate() windows.
    for (let i = 0; ; i++) {
      const up = (await prom.query('up == 1')).length;
      const samples = await prom.query('count_over_time(s3tgt_lun_written_bytes_total[1m])');
      if (up === 2 && samples.length > 0) break;
      assert.ok(i < 120, `prometheus did not scrape both nodes:\n${prom.output}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 5_000));
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
    const empty: string[] = [];
    let queries = 0;
    for (const p of dashboard.panels) {
      for (const t of p.targets ?? []) {
        queries++;
        if ((await prom.query(concrete(t.expr))).length === 0) empty.push(`${p.title}: ${t.expr}`);
      }
    }
    for (const v of dashboard.templating.list) {
      const m = /^label_values\((.+), *([a-z_]+)\)$/.exec(v.query ?? '');
      if (!m) continue;
      queries++;
      if ((await prom.labelValues(concrete(m[1]), m[2])).length === 0) empty.push(`variable ${v.name}: ${v.query}`);
    }
    assert.ok(queries >= 50, `${queries} queries`);
    assert.deepEqual(empty, [], `queries without data:\n${empty.join('\n')}`);
    // The cost panels: LUN 0's PUTs were counted, and its monthly estimate is positive.
    const puts = await prom.query('s3tgt_lun_store_requests_total{name="ha0",request="PUT"} > 0');
    assert.equal(puts.length, 1);
  });
});
