import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { mustRun, run } from '../test/harness/exec';
import { peakRssMiB } from '../test/harness/rss';
import { freePort, TargetProcess } from '../test/harness/target';
import { withCpu } from './lib/cpu';
import { qemuBench } from './lib/qemu';

const TGT_IQN = 'iqn.2026-11.io.s3tgt.bench:tgt';
export const LUN_MIB = 1024;

export interface Workload {
  readonly name: string;
  /** Figure and unit, e.g. IOPS or MB/s. */
  readonly unit: 'IOPS' | 'MB/s';
  /** Runs against a URL and returns the figure and the bytes moved. */
  run(url: string): Promise<Measured>;
}

export interface Measured {
  readonly figure: number;
  readonly bytes: number;
}

export interface ProtocolRow {
  readonly workload: string;
  readonly unit: string;
  readonly tgt: number;
  readonly s3tgt: number;
  /** CPU seconds (user + system) of the server process per GiB moved (median of the runs). */
  readonly tgtCpuPerGiB: number;
  readonly s3tgtCpuPerGiB: number;
}

export interface ProtocolResult {
  readonly rows: ProtocolRow[];
  readonly s3tgtPeakRssMiB: number;
  readonly tgtPeakRssMiB: number;
}

/** qemu-img bench: `count` requests of `size` at queue depth `qd`; IOPS or MB/s. */
export function qemuWorkload(name: string, size: number, qd: number, count: number, write: boolean, unit: 'IOPS' | 'MB/s', flush = false): Workload {
  return {
    name,
    unit,
    async run(url) {
      const args = ['-t', 'none', '-s', String(size), '-d', String(qd), '-c', String(count), ...(write ? ['-w', '--pattern', '0x3c'] : [])];
      // A flush after the last request: the run ends when the target has written everything back.
      if (flush) args.push('--flush-interval', String(count));
      const seconds = await qemuBench(url, args);
      return { figure: unit === 'IOPS' ? count / seconds : (count * size) / 1e6 / seconds, bytes: count * size };
    },
  };
}

/** libiscsi's iscsi-perf: random reads of 8 blocks (4 KiB: both LUNs have 512-byte blocks) at QD 32 for a few seconds (average IOPS). */
export function iscsiPerf(seconds: number): Workload {
  return {
    name: 'iscsi-perf random read, 4 KiB (8 blocks), QD32',
    unit: 'IOPS',
    async run(url) {
      const r = await run('iscsi-perf', ['-m', '32', '-b', '8', '-r', '-t', String(seconds), url], { timeoutMs: (seconds + 30) * 1000 });
      const all = [...r.stdout.matchAll(/iops average (\d+)/g)];
      const last = all[all.length - 1];
      if (!last) throw new Error(`iscsi-perf failed: ${r.stdout.slice(-500)} ${r.stderr}`);
      const iops = Number(last[1]);
      return { figure: iops, bytes: iops * seconds * 8 * 512 };
    },
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

function row(w: Workload, tgt: Array<{ figure: number; cpuPerGiB: number }>, ours: Array<{ figure: number; cpuPerGiB: number }>): ProtocolRow {
  return {
    workload: w.name,
    unit: w.unit,
    tgt: median(tgt.map((m) => m.figure)),
    s3tgt: median(ours.map((m) => m.figure)),
    tgtCpuPerGiB: median(tgt.map((m) => m.cpuPerGiB)),
    s3tgtCpuPerGiB: median(ours.map((m) => m.cpuPerGiB)),
  };
}

/** A private tgtd on its own control port, one 1 GiB file LUN on tmpfs (LUN 1; 0 is its controller). */
export class Tgtd {
  private proc: ChildProcess | undefined;
  port = 0;
  private readonly control = 20 + Math.floor(Math.random() * 200);

  /** `luns` file LUNs: LUN 1 on `image`, LUN n > 1 on `image.n`. */
  constructor(
    private readonly image: string,
    private readonly luns = 1,
  ) {}

  private adm(args: string[]): Promise<string> {
    return mustRun('tgtadm', ['-C', String(this.control), '--lld', 'iscsi', ...args]);
  }

  async start(): Promise<void> {
    this.port = await freePort();
    for (let n = 1; n <= this.luns; n++) await mustRun('truncate', ['-s', `${LUN_MIB}M`, this.imageOf(n)]);
    this.proc = spawn('tgtd', ['-f', '-C', String(this.control), '--iscsi', `portal=127.0.0.1:${this.port}`], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const r = await run('tgtadm', ['-C', String(this.control), '--lld', 'iscsi', '--mode', 'target', '--op', 'show']);
      if (r.code === 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    await this.adm(['--mode', 'target', '--op', 'new', '--tid', '1', '--targetname', TGT_IQN]);
    for (let n = 1; n <= this.luns; n++) {
      await this.adm(['--mode', 'logicalunit', '--op', 'new', '--tid', '1', '--lun', String(n), '--backing-store', this.imageOf(n)]);
    }
    await this.adm(['--mode', 'target', '--op', 'bind', '--tid', '1', '--initiator-address', 'ALL']);
  }

  get pid(): number {
    return this.proc?.pid ?? 0;
  }

  get iqn(): string {
    return TGT_IQN;
  }

  private imageOf(n: number): string {
    return n === 1 ? this.image : `${this.image}.${n}`;
  }

  url(lun = 1): string {
    return `iscsi://127.0.0.1:${this.port}/${TGT_IQN}/${lun}`;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }
}

/**
 * The protocol path: s3tgt serving a LUN from the local chunk store on tmpfs against tgtd
 * serving a file on tmpfs, with the same clients, one after the other, in one run. Both LUNs
 * are filled first, so neither side reads holes.
 */
export async function protocolPathBench(opts: { quick: boolean }): Promise<ProtocolResult> {
  const dir = mkdtempSync('/dev/shm/s3tgt-bench-');
  const n = (full: number): number => (opts.quick ? Math.max(1000, Math.floor(full / 10)) : full);
  const workloads: Workload[] = [
    qemuWorkload('qemu-img bench 4 KiB read, QD32', 4096, 32, n(200_000), false, 'IOPS'),
    qemuWorkload('qemu-img bench 4 KiB write, QD32', 4096, 32, n(200_000), true, 'IOPS'),
    qemuWorkload('qemu-img bench 256 KiB read, QD16', 262144, 16, n(16_000), false, 'MB/s'),
    qemuWorkload('qemu-img bench 256 KiB write, QD16', 262144, 16, n(8_000), true, 'MB/s'),
    iscsiPerf(opts.quick ? 3 : 5),
  ];
  // The fill ends with SYNCHRONIZE CACHE, so no write-back of it competes with the measurements.
  const fill = qemuWorkload('fill', 1048576, 16, LUN_MIB, true, 'MB/s', true);
  const tgt = new Tgtd(path.join(dir, 'tgt.img'));
  // The LUN is RAM-resident on both sides: tgtd's file sits in the page cache (tmpfs), s3tgt's
  // chunks in its cache (as large as the LUN) over a tmpfs chunk store. A second s3tgt with a
  // quarter-size cache measures the miss path (read from the store, CRC32C verified).
  const lunYaml = (cache: string): string => `      - lun: 0
        name: bench
        size: ${LUN_MIB}MiB
        cache: { size: ${cache}, mode: write-back }`;
  const s3tgt = new TargetProcess({ dataDir: path.join(dir, 's3tgt'), logLevel: 'warn', lunsYaml: lunYaml(`${LUN_MIB}MiB`) });
  const small = new TargetProcess({ dataDir: path.join(dir, 's3tgt-small'), logLevel: 'warn', lunsYaml: lunYaml('256MiB') });
  try {
    await tgt.start();
    await s3tgt.start();
    await small.start();
    await fill.run(tgt.url());
    await fill.run(s3tgt.url(0));
    await fill.run(small.url(0));
    const rows: ProtocolRow[] = [];
    const reps = opts.quick ? 1 : 3;
    // One run of `w` against a server: its figure and the server's CPU seconds per GiB moved.
    const measure = async (w: Workload, url: string, pid: number): Promise<{ figure: number; cpuPerGiB: number }> => {
      const { value, cpu } = await withCpu(pid, () => w.run(url));
      return { figure: value.figure, cpuPerGiB: cpu / (value.bytes / 2 ** 30) };
    };
    for (const w of workloads) {
      // Each side `reps` times, alternating who goes first so neither always meets a warmer
      // machine; the median of each side (single runs on 2 shared cores vary by up to 30 %).
      const a: Array<{ figure: number; cpuPerGiB: number }> = [];
      const b: Array<{ figure: number; cpuPerGiB: number }> = [];
      for (let r = 0; r < reps; r++) {
        if (r % 2 === 0) {
          a.push(await measure(w, tgt.url(), tgt.pid));
          b.push(await measure(w, s3tgt.url(0), s3tgt.proc?.pid ?? 0));
        } else {
          b.push(await measure(w, s3tgt.url(0), s3tgt.proc?.pid ?? 0));
          a.push(await measure(w, tgt.url(), tgt.pid));
        }
      }
      rows.push(row(w, a, b));
    }
    const perf = iscsiPerf(opts.quick ? 3 : 5);
    const misses: Array<{ figure: number; cpuPerGiB: number }> = [];
    for (let r = 0; r < reps; r++) misses.push(await measure(perf, small.url(0), small.proc?.pid ?? 0));
    const last = rows[rows.length - 1];
    rows.push({
      workload: `${perf.name}, s3tgt cache 1/4 of the LUN`,
      unit: perf.unit,
      tgt: last.tgt,
      s3tgt: median(misses.map((m) => m.figure)),
      tgtCpuPerGiB: last.tgtCpuPerGiB,
      s3tgtCpuPerGiB: median(misses.map((m) => m.cpuPerGiB)),
    });
    return { rows, s3tgtPeakRssMiB: peakRssMiB(s3tgt.proc?.pid ?? 0), tgtPeakRssMiB: peakRssMiB(tgt.pid) };
  } finally {
    await s3tgt.stop();
    await small.stop();
    await tgt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
