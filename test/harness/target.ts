import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { SERVE_V8_FLAGS } from '../../src/app/node-flags';
import { tempDir } from '../lib/temp-dir';

export const TEST_IQN = 'iqn.2026-11.io.s3tgt:test';

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');

/** The low end of the kernel's ephemeral port range (where outgoing connections take ports). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 12_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** Ports this process handed out: two allocations made before either binds never collide. */
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A loopback port for a server a test starts later. It is picked below the ephemeral range:
 * a port the kernel handed out for "port 0" can be taken, before the server binds it, by an
 * outgoing connection (a CI run failed so with EADDRINUSE), while ports below that range are
 * never used for outgoing connections.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  for (let i = 0; i < 200; i++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free loopback port between 10000 and ${low} after 200 tries`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** GET /healthz answered 200. */
export function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

export interface TargetOptions {
  /** Extra YAML appended at the top level. */
  readonly extraYaml?: string;
  /** The YAML of the LUN list of the test target (default: LUN 0, 1 GiB, file store). */
  readonly lunsYaml?: string;
  /** Extra YAML inside the test target mapping. */
  readonly targetYaml?: string;
  /** More targets, appended to the `targets:` list (each item indented two spaces). */
  readonly moreTargetsYaml?: string;
  readonly dataDir?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly node?: string;
  /** More options for node, before the script (e.g. --cpu-prof: bench/profile.ts). */
  readonly nodeArgs?: readonly string[];
  /** Log level of the target process (default debug: the output helps when a test fails). */
  readonly logLevel?: string;
  /** The whole configuration, instead of the one built here (a cluster node's: harness/cluster.ts). */
  readonly configYaml?: (t: TargetProcess) => string;
}

/** A real s3tgt process on a free loopback port, with its own config and data directory. */
export class TargetProcess {
  proc: ChildProcess | undefined;
  output = '';
  readonly dir: string;
  readonly configFile: string;
  port = 0;
  /** The metrics/admin HTTP endpoint of this target. */
  metricsPort = 0;

  constructor(private readonly opts: TargetOptions = {}) {
    this.dir = tempDir('s3tgt-test-');
    this.configFile = path.join(this.dir, 's3tgt.yaml');
  }

  url(lun = 0): string {
    return `iscsi://127.0.0.1:${this.port}/${TEST_IQN}/${lun}`;
  }

  get portal(): string {
    return `iscsi://127.0.0.1:${this.port}`;
  }

  /** `readyMs`: how long it may take to be ready (a journal replay at start takes longer). */
  async start(readyMs = 20_000): Promise<void> {
    const proc = await this.spawn();
    // Ready when /healthz says so (whatever the log level): the portal listens before the
    // LUNs are open (connections wait unread meanwhile).
    const deadline = Date.now() + readyMs;
    while (!(await healthy(this.metricsPort))) {
      if (proc.exitCode !== null) throw new Error(`s3tgt exited ${proc.exitCode}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`s3tgt did not start:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!(await accepts(this.port))) throw new Error(`s3tgt is healthy but its portal does not accept connections:\n${this.output}`);
  }

  /** Writes the configuration and starts the process, without waiting for it to be ready. */
  async spawn(): Promise<ChildProcess> {
    if (this.port === 0) this.port = await freePort();
    if (this.metricsPort === 0) this.metricsPort = await freePort();
    const luns = codecVariant(
      this.opts.lunsYaml ??
        `      - lun: 0
        name: lun0
        size: 1GiB`,
    );
    writeFileSync(
      this.configFile,
      this.opts.configYaml?.(this) ??
        `portals: ["127.0.0.1:${this.port}"]
dataDir: ${this.opts.dataDir ?? path.join(this.dir, 'data')}
log: { level: ${this.opts.logLevel ?? 'debug'}, format: text }
metrics: { listen: "127.0.0.1:${this.metricsPort}" }
${this.opts.extraYaml ?? ''}
targets:
  - iqn: ${TEST_IQN}
${this.opts.targetYaml ?? ''}
    luns:
${luns}
${this.opts.moreTargetsYaml ?? ''}
`,
    );
    this.output = '';
    // Started as the README and the `s3tgt` script start it (src/app/node-flags.ts).
    const proc = spawn(
      this.opts.node ?? process.execPath,
      [...SERVE_V8_FLAGS, ...(this.opts.nodeArgs ?? []), MAIN, 'serve', '--config', this.configFile],
      {
        env: { ...process.env, ...this.opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.proc = proc;
    proc.stdout?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    return proc;
  }

  /**
   * One value of this target's /metrics: the sum of the series of `selector`'s metric whose labels
   * include each label of the selector (`s3tgt_x_total`, `s3tgt_x_total{lun="0"}`); NaN when none.
   */
  async metric(selector: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    const want = parseSeries(selector);
    let sum = Number.NaN;
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const space = line.lastIndexOf(' ');
      const got = parseSeries(line.slice(0, space));
      if (got.name !== want.name || ![...want.labels].every(([k, v]) => got.labels.get(k) === v)) continue;
      sum = (Number.isNaN(sum) ? 0 : sum) + Number(line.slice(space + 1));
    }
    return sum;
  }

  /** Waits for the process to exit on its own (after a signal sent earlier); SIGKILL after the timeout. */
  async waitExit(timeoutMs = 60_000): Promise<number | null> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /** Sends a signal and waits for the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<number | null> {
    const p = this.proc;
    // Already gone (exited, or killed by a signal): its 'exit' event will not come again.
    if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /**
   * Waits (bounded) until the portal accepts connections: it is bound before the LUNs open,
   * so this holds while S3 is down; a process that exits meanwhile fails it.
   */
  async listening(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await accepts(this.port))) {
      if (!this.alive) throw new Error(`s3tgt exited before its portal listened:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`s3tgt's portal did not listen within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  get alive(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }
}

/** `name{k="v",...}` -> its name and labels (Prometheus text format, escapes kept as written). */
function parseSeries(series: string): { name: string; labels: Map<string, string> } {
  const brace = series.indexOf('{');
  const labels = new Map<string, string>();
  if (brace < 0) return { name: series.trim(), labels };
  for (const m of series.slice(brace).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels.set(m[1] ?? '', m[2] ?? '');
  return { name: series.slice(0, brace), labels };
}

/**
 * `S3TGT_TEST_CODEC=zstd|lz4`: every LUN of the test targets is compressed with it and
 * encrypted (a fixed test key), so that a suite runs again on encoded LUNs (Makefile,
 * test-codec; issue 19). Block-style LUN entries only: the line after each `name:`.
 */
export function codecVariant(luns: string): string {
  const codec = process.env.S3TGT_TEST_CODEC;
  if (!codec) return luns;
  return luns.replace(
    /^(\s+)name: (\S+)$/gm,
    (line, indent: string) => `${line}\n${indent}compression: ${codec}\n${indent}encryption: { keyId: test, key: "${TEST_CODEC_KEY}" }`,
  );
}

const TEST_CODEC_KEY = '5d'.repeat(32);
