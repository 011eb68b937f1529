import { mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { CLUSTER_SECRET, waitRole } from '../test/harness/cluster';
import { freePort, TargetProcess, TEST_IQN } from '../test/harness/target';
import { cpuSeconds } from './lib/cpu';
import { iscsiPerf, LUN_MIB, type Measured, median, qemuWorkload, Tgtd, type Workload } from './protocol-path';

/** One server setup: where each LUN is reached, and the processes that serve them. */
interface Setup {
  readonly urls: readonly string[];
  readonly pids: () => number[];
}

export interface MulticoreCell {
  /** Sum over the LUNs of each client's figure (median of the runs). */
  readonly figure: number;
  /** CPU seconds (user + system) of every server process per GiB moved. */
  readonly cpuPerGiB: number;
  /** CPU the server processes used, in cores (CPU seconds per second of the run). */
  readonly cores: number;
}

export interface MulticoreRow {
  readonly workload: string;
  readonly unit: string;
  readonly tgt: MulticoreCell;
  readonly one: MulticoreCell;
  readonly two: MulticoreCell;
}

const LUNS = 2;

/**
 * Issue 18's multi-core rows. Node runs JavaScript on one thread, so s3tgt uses more cores by
 * running more processes: nodes of one cluster (docs/ha.md) over the same store, each active
 * for its share of the LUNs (`preferred`). Two LUNs in RAM (chunk store on tmpfs, caches as
 * large as the LUNs), one client per LUN at once, served by tgtd, by one s3tgt process, and by
 * a two-node s3tgt cluster with one LUN active on each node.
 */
export async function multicoreBench(opts: { quick: boolean }): Promise<MulticoreRow[]> {
  const dir = mkdtempSync('/dev/shm/s3tgt-multicore-');
  const reps = opts.quick ? 1 : 3;
  const workloads: Workload[] = [
    iscsiPerf(opts.quick ? 3 : 5),
    qemuWorkload('qemu-img bench 256 KiB read, QD16', 262144, 16, opts.quick ? 2000 : 8000, false, 'MB/s'),
  ];
  const fill = qemuWorkload('fill', 1048576, 16, LUN_MIB, true, 'MB/s', true);
  const cells = new Map<string, MulticoreCell[]>();
  // Each setup in turn (its data is 2 GiB of tmpfs and 2 GiB of cache), torn down before the next.
  const setups: Array<[string, () => Promise<{ setup: Setup; stop: () => Promise<void> }>]> = [
    ['tgt', () => tgtSetup(dir)],
    ['one', () => oneProcess(dir)],
    ['two', () => twoNodes(dir)],
  ];
  try {
    for (const [name, start] of setups) {
      const { setup, stop } = await start();
      try {
        for (const url of setup.urls) await fill.run(url);
        const got: MulticoreCell[] = [];
        for (const w of workloads) {
          const runs: MulticoreCell[] = [];
          for (let r = 0; r < reps; r++) runs.push(await measure(w, setup));
          got.push({
            figure: median(runs.map((c) => c.figure)),
            cpuPerGiB: median(runs.map((c) => c.cpuPerGiB)),
            cores: median(runs.map((c) => c.cores)),
          });
        }
        cells.set(name, got);
      } finally {
        await stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const of = (name: string, i: number): MulticoreCell => (cells.get(name) as MulticoreCell[])[i];
  return workloads.map((w, i) => ({
    workload: `${w.name}, one client per LUN`,
    unit: w.unit,
    tgt: of('tgt', i),
    one: of('one', i),
    two: of('two', i),
  }));
}

/** Every LUN's client at once; the sum of their figures and the servers' CPU. */
async function measure(w: Workload, setup: Setup): Promise<MulticoreCell> {
  const pids = setup.pids();
  const before = pids.map(cpuSeconds);
  const t0 = process.hrtime.bigint();
  const got: Measured[] = await Promise.all(setup.urls.map((u) => w.run(u)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - before[i], 0);
  const bytes = got.reduce((s, m) => s + m.bytes, 0);
  return { figure: got.reduce((s, m) => s + m.figure, 0), cpuPerGiB: cpu / (bytes / 2 ** 30), cores: cpu / seconds };
}

async function tgtSetup(dir: string): Promise<{ setup: Setup; stop: () => Promise<void> }> {
  const tgt = new Tgtd(path.join(dir, 'tgt.img'), LUNS);
  await tgt.start();
  return {
    setup: { urls: [tgt.url(1), tgt.url(2)], pids: () => [tgt.pid] },
    stop: async () => {
      await tgt.stop();
      rmSync(path.join(dir, 'tgt.img'), { force: true });
      for (let n = 2; n <= LUNS; n++) rmSync(path.join(dir, `tgt.img.${n}`), { force: true });
    },
  };
}

/** The LUN list: write-through (a cluster's advice, docs/ha.md) on both sides, caches as large as the LUNs. */
function lunsYaml(cluster: boolean): string {
  return Array.from(
    { length: LUNS },
    (_, i) => `      - lun: ${i}
        name: m${i}
        store: file
        size: ${LUN_MIB}MiB${cluster ? `\n        preferred: ${i % 2 === 0 ? 'a' : 'b'}` : ''}
        cache: { size: ${LUN_MIB}MiB, mode: write-through }`,
  ).join('\n');
}

async function oneProcess(dir: string): Promise<{ setup: Setup; stop: () => Promise<void> }> {
  const data = path.join(dir, 'one');
  const t = new TargetProcess({ dataDir: data, logLevel: 'warn', lunsYaml: lunsYaml(false) });
  await t.start();
  return {
    setup: { urls: [t.url(0), t.url(1)], pids: () => [t.proc?.pid ?? 0] },
    stop: async () => {
      await t.stop();
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** Two nodes of one cluster on one shared chunk directory: m0 active on a, m1 on b. */
async function twoNodes(dir: string): Promise<{ setup: Setup; stop: () => Promise<void> }> {
  const data = path.join(dir, 'two');
  const ports = { a: await Promise.all([freePort(), freePort(), freePort()]), b: await Promise.all([freePort(), freePort(), freePort()]) };
  const yaml = (self: 'a' | 'b'): string => `dataDir: ${data}
log: { level: warn, format: text }
lease: { ttl: 8s, renewInterval: 1s, margin: 2s }
cluster:
  self: ${self}
  secret: ${CLUSTER_SECRET}
  nodes:
    - { name: a, portals: ["127.0.0.1:${ports.a[0]}"], tpg: 1, admin: "127.0.0.1:${ports.a[1]}", replication: "127.0.0.1:${ports.a[2]}" }
    - { name: b, portals: ["127.0.0.1:${ports.b[0]}"], tpg: 2, admin: "127.0.0.1:${ports.b[1]}", replication: "127.0.0.1:${ports.b[2]}" }
targets:
  - iqn: ${TEST_IQN}
    luns:
${lunsYaml(true)}
`;
  const a = new TargetProcess({ configYaml: () => yaml('a') });
  const b = new TargetProcess({ configYaml: () => yaml('b') });
  a.port = ports.a[0];
  a.metricsPort = ports.a[1];
  b.port = ports.b[0];
  b.metricsPort = ports.b[1];
  await Promise.all([a.start(60_000), b.start(60_000)]);
  await waitRole(a, 'm0', 'active', 60_000);
  await waitRole(b, 'm1', 'active', 60_000);
  return {
    setup: { urls: [a.url(0), b.url(1)], pids: () => [a.proc?.pid ?? 0, b.proc?.pid ?? 0] },
    stop: async () => {
      await a.stop();
      await b.stop();
      rmSync(data, { recursive: true, force: true });
    },
  };
}
