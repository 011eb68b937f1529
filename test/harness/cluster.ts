import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Rgw } from './rgw';
import { freePort, TargetProcess, TEST_IQN } from './target';

export interface ClusterOptions {
  readonly bucket: string;
  /** Per node, the S3 endpoint it talks to (RGW itself, or a fault proxy in front of it). */
  readonly endpoints?: { readonly a?: string; readonly b?: string };
  /** The LUN list of the test target (YAML items indented like `      - lun: 0`). */
  readonly lunsYaml?: string;
  /** Lease timing (YAML). Short: a takeover after 4 + 1 s. */
  readonly lease?: string;
  /** Node a listens on a second portal too (two active paths: libiscsi's MultipathIO family). */
  readonly secondPortalOnA?: boolean;
  /** A journal for each node (its own directory), for journal LUNs. */
  readonly journal?: boolean;
  /** The journal's uploadDelay (default 2s). */
  readonly journalUploadDelay?: string;
  readonly logLevel?: string;
}

export const CLUSTER_SECRET = 'test-cluster-secret-0123456789';

/** LUN 0 "ha0", 256 MiB, write-through, preferred on node a. */
export const DEFAULT_CLUSTER_LUNS = `      - lun: 0
        name: ha0
        store: s3
        size: 256MiB
        preferred: a
        cache: { size: 32MiB, mode: write-through }`;

/**
 * Two s3tgt processes forming a cluster (docs/ha.md) on one RGW bucket: node a (tpg 1) and
 * node b (tpg 2), each its own portal, admin endpoint and replication port on loopback.
 */
export class ClusterPair {
  readonly a: TargetProcess;
  readonly b: TargetProcess;
  private ports: { a: number[]; b: number[] } = { a: [], b: [] };
  secondPortPortA = 0;

  constructor(
    private readonly rgw: Rgw,
    private readonly o: ClusterOptions,
  ) {
    this.a = this.node('a');
    this.b = this.node('b');
  }

  node(name: 'a' | 'b'): TargetProcess {
    return new TargetProcess({ env: this.rgw.env(), configYaml: (t) => this.yaml(name, t) });
  }

  /** Picks every port first, so both files name the same addresses. */
  async allocate(): Promise<void> {
    if (this.ports.a.length > 0) return;
    for (const n of ['a', 'b'] as const) {
      const p = await Promise.all([freePort(), freePort(), freePort()]);
      this.ports[n] = p;
      const t = n === 'a' ? this.a : this.b;
      t.port = p[0];
      t.metricsPort = p[1];
    }
    if (this.o.secondPortalOnA) this.secondPortPortA = await freePort();
  }

  async start(): Promise<void> {
    await this.allocate();
    if (this.o.journal) for (const t of [this.a, this.b]) await fs.mkdir(path.join(t.dir, 'journal'), { recursive: true });
    await Promise.all([this.a.start(60_000), this.b.start(60_000)]);
  }

  /** Starts both nodes and waits until node a is active for `lun` (it is the preferred node). */
  async up(lun = 'ha0'): Promise<void> {
    await this.start();
    await waitRole(this.a, lun, 'active');
  }

  /** Ends both processes (kill -9: nothing a test left behind matters). */
  async down(): Promise<void> {
    await this.a.stop('SIGKILL');
    await this.b.stop('SIGKILL');
  }

  /** Restarts a node that was stopped or killed, with the same ports and configuration. */
  async restart(t: TargetProcess): Promise<void> {
    await t.start(60_000);
  }

  url(t: TargetProcess, lun = 0): string {
    return t.url(lun);
  }

  private yaml(self: 'a' | 'b', t: TargetProcess): string {
    const { a, b } = this.ports;
    const portalsA = [`127.0.0.1:${a[0]}`, ...(this.o.secondPortalOnA ? [`127.0.0.1:${this.secondPortPortA}`] : [])];
    const endpoint = this.o.endpoints?.[self] ?? this.rgw.endpoint;
    return `dataDir: ${path.join(t.dir, 'data')}
log: { level: ${this.o.logLevel ?? 'debug'}, format: text }
s3:
  endpoint: ${endpoint}
  bucket: ${this.o.bucket}
  prefix: luns
  requestTimeout: 3s
  retryDeadline: 4s
lease: ${this.o.lease ?? '{ ttl: 4s, renewInterval: 500ms, margin: 1s }'}
${this.o.journal ? `journal: { dir: ${path.join(t.dir, 'journal')}, size: 64MiB, uploadDelay: ${this.o.journalUploadDelay ?? '2s'} }` : ''}
cluster:
  self: ${self}
  secret: ${CLUSTER_SECRET}
  nodes:
    - { name: a, portals: [${portalsA.join(', ')}], tpg: 1, admin: "127.0.0.1:${a[1]}", replication: "127.0.0.1:${a[2]}" }
    - { name: b, portals: ["127.0.0.1:${b[0]}"], tpg: 2, admin: "127.0.0.1:${b[1]}", replication: "127.0.0.1:${b[2]}" }
targets:
  - iqn: ${TEST_IQN}
    luns:
${this.o.lunsYaml ?? DEFAULT_CLUSTER_LUNS}
`;
  }
}

/** GET /admin/cluster of a node: each LUN's role there. */
export async function clusterView(t: TargetProcess): Promise<{ node: string; luns: { name: string; role: string; active: string | null }[] }> {
  const res = await fetch(`http://127.0.0.1:${t.metricsPort}/admin/cluster`, { signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as { node: string; luns: { name: string; role: string; active: string | null }[] };
}

/** Waits until `t` reports LUN `name` in `role` (bounded). */
export async function waitRole(t: TargetProcess, name: string, role: string, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    try {
      const v = await clusterView(t);
      if (v.luns.find((l) => l.name === name)?.role === role) return Date.now() - t0;
    } catch {
      // not up yet
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`LUN ${name} did not become ${role} within ${timeoutMs} ms:\n${t.output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
