import type { Config, LunConfig, TargetConfig } from '../config/config';
import { DEFAULT_TARGET_LIMITS } from '../iscsi/login/params';
import { IscsiServer } from '../iscsi/server';
import type { PortalAddress } from '../iscsi/target-entry';
import { buildRegistry } from '../metrics/registry';
import { AluaStates } from '../scsi/alua';
import { DEFAULT_PRODUCT, DEFAULT_VENDOR, PRODUCT_REVISION } from '../scsi/identity';
import { LogicalUnit } from '../scsi/logical-unit';
import { ScsiTarget } from '../scsi/target';
import type { ChunkVolume } from '../storage/chunk-volume';
import { Journal } from '../storage/journal/journal';
import { JournalStats } from '../storage/journal/journal-stats';
import { uuidHex } from '../storage/journal/record';
import type { Lease } from '../storage/lease';
import { systemIdentity } from '../storage/lease-record';
import { type LunCosts, monthlyCost } from '../storage/lun-costs';
import { SnapshotCatalog } from '../storage/snapshots/catalog';
import type { PreservingStore } from '../storage/snapshots/preserving-store';
import { systemClock } from '../util/clock';
import { configureLogging, log } from '../util/log';
import { adminRoutes } from './admin';
import { clusterRoutes } from './admin-cluster';
import { bounded } from './bounded';
import { ClusterLun } from './cluster-lun';
import { authPolicy, MutableDirectory, targetEntry } from './directory';
import { HttpEndpoint } from './http-server';
import { quarantineUnserved } from './journal-recovery';
import { openLun, openSnapshotLun } from './open-volume';
import { describeReload, planReload, type ReloadPlan } from './reload';
import { ClusterReplication } from './replication';
import { Backends } from './stores';

/** One LUN being served: where it is exported, its volume and its lease. */
export interface ServedLun {
  readonly target: string;
  readonly lun: number;
  readonly config: LunConfig;
  readonly lu: LogicalUnit;
  readonly volume: ChunkVolume;
  /** None for a snapshot LUN (read-only: it writes nothing). */
  readonly lease?: Lease;
  /** Preserves chunks into the LUN's newest snapshot before they change (none for a snapshot LUN). */
  readonly preserving?: PreservingStore;
  /** Seconds the journal replay took at open (0: nothing to replay). */
  readonly replaySeconds: number;
  /** Snapshots the LUN has (from its catalog at open, updated by the admin endpoint). */
  snapshots: number;
  /** Its requests to the object store and their bytes, counted since `costs.since`. */
  readonly costs: LunCosts;
}

/**
 * The running service, composed from its configuration: stores → volumes (each under its
 * lease) → logical units → targets → portal, plus the HTTP endpoint. It can take a new
 * configuration at run time (SIGHUP) and grow a LUN online.
 */
export class Service {
  /** The LUNs this node serves (in a cluster: those it is active for). */
  readonly luns = new Map<string, ServedLun>();
  /** In a cluster: every LUN with a lease, active here or standby (docs/ha.md). */
  readonly clusterLuns = new Map<string, ClusterLun>();
  private readonly targets = new Map<string, ScsiTarget>();
  private readonly directory: MutableDirectory;
  private http: HttpEndpoint | undefined;
  private stopping: Promise<void> | undefined;
  /** The LUNs are open and the portal serves them (/healthz says "starting" before). */
  private started = false;
  portals: readonly PortalAddress[] = [];
  readonly server: IscsiServer;

  private constructor(
    private config: Config,
    readonly backends: Backends,
    /** The server's journal (docs/journal.md), open before any LUN and closed after all. */
    readonly journal: Journal | undefined,
    private readonly journalStats: JournalStats,
    /** In a cluster with journal LUNs: the journal's replication to the other nodes. */
    readonly replication?: ClusterReplication,
  ) {
    const cluster = config.cluster;
    this.directory = new MutableDirectory(
      config.portals,
      cluster ? cluster.nodes.filter((n) => n !== cluster.self).map((n) => ({ portals: n.portals, tpgt: n.tpg })) : [],
    );
    this.server = new IscsiServer({
      listen: config.portals,
      directory: this.directory,
      discoveryAuth: authPolicy(config.discovery.chap),
      limits: {
        ...DEFAULT_TARGET_LIMITS,
        maxRecvDataSegmentLength: config.iscsi.maxRecvDataSegmentLength,
        maxBurstLength: config.iscsi.maxBurstLength,
        firstBurstLength: config.iscsi.firstBurstLength,
        maxOutstandingR2T: config.iscsi.maxOutstandingR2T,
        headerDigests: config.iscsi.headerDigests,
        dataDigests: config.iscsi.dataDigests,
      },
      portal: {
        queueDepth: config.iscsi.queueDepth,
        nopIntervalMs: config.iscsi.nopIntervalMs,
        nopTimeoutMs: config.iscsi.nopTimeoutMs,
        loginTimeoutMs: config.iscsi.loginTimeoutMs,
      },
    });
  }

  /**
   * Starts the service. Every listening address is bound first, so that one in use fails the
   * start before S3 is reached or any lease taken (connections that arrive meanwhile wait
   * unread); then the bucket is checked and the LUNs open, all at once (a stale lease makes us
   * wait for its expiry). A start that fails after that releases every lease it took.
   */
  static async start(config: Config): Promise<Service> {
    configureLogging(config.log.level, config.log.format);
    const journalStats = new JournalStats();
    let s: Service | undefined;
    // Journal replication (docs/ha.md) sees the LUNs through the service made below.
    const replication = ClusterReplication.create(config.cluster, config.journal !== undefined, {
      served: () => [...(s?.luns.values() ?? [])].map((l) => ({ uuid: l.volume.info.uuid, lease: l.lease })),
      taken: (uuid) => {
        for (const c of s?.clusterLuns.values() ?? []) {
          if (c.uuid === uuid) return c.refusesReplicas;
        }
        return false;
      },
    });
    const journal = config.journal
      ? await Journal.open({
          dir: config.journal.dir,
          sizeBytes: config.journal.sizeBytes,
          spaceTimeoutMs: config.journal.spaceTimeoutMs,
          uploadDelayMs: config.journal.uploadDelayMs,
          clock: systemClock,
          identity: systemIdentity,
          onCommit: journalStats.onCommit,
          ...(replication ? { mirror: replication.mirror } : {}),
        })
      : undefined;
    const backends = new Backends(config);
    try {
      s = new Service(config, backends, journal, journalStats, replication);
      if (replication && journal) await replication.start(journal);
      s.portals = await s.server.listen();
      if (config.metrics.listen) await s.startHttp(config.metrics.listen);
      // S3 is reached only once the portal holds connections: a login that arrives while S3 is
      // slow or briefly down at start waits and is then served, instead of being refused (and
      // an answer of "target unavailable" would be a permanent device loss to ESXi).
      await backends.open();
      await s.openLuns(config.targets.flatMap((t) => t.luns.map((l) => ({ target: t.iqn, lun: l }))));
      // A snapshot LUN shares its UUID with the LUN it was taken of, whose records it does not replay.
      const writers = [...s.luns.values()].filter((l) => !l.config.snapshotOf).map((l) => l.volume.info.uuid);
      // A cluster's standby LUNs keep their records: the node may take them over later.
      for (const c of s.clusterLuns.values()) if (c.lu) writers.push(c.lu.identity.uuid);
      if (journal) await quarantineUnserved(journal, new Set(writers.map(uuidHex)));
      for (const t of config.targets) s.addTarget(t);
    } catch (e) {
      await s?.http?.close();
      await s?.server.close();
      await s?.closeLuns();
      await backends.close();
      await replication?.close();
      await journal?.close();
      throw e;
    }
    s.server.ready();
    s.started = true;
    return s;
  }

  get currentConfig(): Config {
    return this.config;
  }

  /** The LUN served under `name`, if any. */
  lun(name: string): ServedLun | undefined {
    return this.luns.get(name);
  }

  private async openLuns(list: ReadonlyArray<{ target: string; lun: LunConfig }>): Promise<void> {
    const results = await Promise.allSettled(
      list.map(async ({ target, lun }) => {
        if (this.config.cluster && !lun.snapshotOf) return this.openClusterLun(target, lun);
        const { backend, layout } = this.backends.for(lun);
        const costs = backend.stats.costsOf(layout.root);
        const o = lun.snapshotOf
          ? { volume: await openSnapshotLun(backend.store, layout, lun), lease: undefined, preserving: undefined, replay: undefined }
          : await openLun(backend.store, layout, lun, this.config.lease, this.journal);
        const scsi = this.targets.get(target) ?? this.newScsiTarget(target);
        const volume = o.volume;
        const lu = new LogicalUnit(
          lun.lun,
          volume,
          { vendor: DEFAULT_VENDOR, product: DEFAULT_PRODUCT, revision: PRODUCT_REVISION, uuid: volume.info.uuid },
          scsi,
        );
        try {
          await lu.load();
        } catch (e) {
          await volume.close().catch(() => undefined);
          await o.lease?.release();
          throw e;
        }
        this.luns.set(lun.name, {
          target,
          lun: lun.lun,
          config: lun,
          lu,
          volume,
          lease: o.lease,
          preserving: o.preserving,
          replaySeconds: o.replay?.seconds ?? 0,
          snapshots: o.preserving ? (await SnapshotCatalog.load(backend.store, layout)).snapshots.length : 0,
          costs,
        });
        log.info('LUN ready', { target, lun: lun.lun, name: lun.name, size: volume.info.sizeBytes, store: backend.store.description });
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * A LUN of a cluster: presented at once, active if this node takes its lease, standby
   * otherwise; from then on its ClusterLun moves it between the two (docs/ha.md).
   */
  private async openClusterLun(target: string, lun: LunConfig): Promise<void> {
    const cluster = this.config.cluster;
    if (!cluster) throw new Error('not a cluster');
    const { backend, layout } = this.backends.for(lun);
    const groups = cluster.nodes.map((n) => ({ id: n.tpg, node: n.name }));
    const local = groups.find((g) => g.node === cluster.self.name);
    if (!local) throw new Error(`node ${cluster.self.name} is not in the cluster`);
    const s3 = this.config.s3;
    const c = new ClusterLun({
      cluster,
      lun,
      store: backend.store,
      layout,
      timing: this.config.lease,
      journal: this.journal,
      clock: systemClock,
      graceMs: 10_000,
      ...(this.replication ? { replicas: this.replication } : {}),
      flushBoundMs: Math.max(30_000, 2 * ((s3?.retryDeadlineMs ?? 15_000) + (s3?.requestTimeoutMs ?? 10_000))),
      makeLu: (info, volume) => {
        const scsi = this.targets.get(target) ?? this.newScsiTarget(target);
        return new LogicalUnit(
          lun.lun,
          volume,
          { vendor: DEFAULT_VENDOR, product: DEFAULT_PRODUCT, revision: PRODUCT_REVISION, uuid: info.uuid },
          scsi,
          new AluaStates(
            groups,
            local,
            groups.find((g) => g.node === lun.preferred),
          ),
        );
      },
      onActive: (o) => {
        const lu = c.lu;
        if (!lu) throw new Error(`LUN ${lun.name}: active without a logical unit`);
        this.luns.set(lun.name, {
          target,
          lun: lun.lun,
          config: lun,
          lu,
          volume: o.volume,
          lease: o.lease,
          preserving: o.preserving,
          replaySeconds: o.replay?.seconds ?? 0,
          snapshots: 0,
          costs: backend.stats.costsOf(layout.root),
        });
      },
      onInactive: () => this.luns.delete(lun.name),
    });
    this.clusterLuns.set(lun.name, c);
    await c.start();
    log.info('LUN ready', { target, lun: lun.lun, name: lun.name, role: c.role, active: c.activeNode ?? 'nobody' });
  }

  private newScsiTarget(iqn: string): ScsiTarget {
    const tpgt = this.config.targets.find((t) => t.iqn === iqn)?.portalGroupTag ?? 1;
    const scsi = new ScsiTarget(iqn, systemClock, tpgt);
    this.targets.set(iqn, scsi);
    return scsi;
  }

  /** Exports a target whose LUNs are open: SCSI LUNs first, then the portal entry. */
  private addTarget(t: TargetConfig): void {
    const scsi = this.targets.get(t.iqn) ?? this.newScsiTarget(t.iqn);
    for (const l of t.luns) {
      const served = this.luns.get(l.name);
      const lu = this.clusterLuns.get(l.name)?.lu ?? (served?.target === t.iqn ? served.lu : undefined);
      if (lu && !scsi.logicalUnits().includes(lu)) scsi.addLun(lu);
    }
    this.directory.set(targetEntry(t, scsi));
  }

  private async startHttp(listen: NonNullable<Config['metrics']['listen']>): Promise<void> {
    const http = new HttpEndpoint(listen);
    const registry = buildRegistry({
      iscsi: { stats: this.server.stats, sessions: () => this.server.sessions.size, connections: () => this.server.connections.size },
      luns: () =>
        [...this.luns.entries()].map(([name, s]) => ({
          target: s.target,
          lun: s.lun,
          name,
          commands: s.lu.stats,
          volume: s.volume.stats,
          dirtyBytes: s.volume.dirtyBytes,
          cachedBytes: s.volume.cachedBytes,
          replaySeconds: s.replaySeconds,
          snapshotPreservedChunks: s.preserving?.preservedCount ?? 0,
          snapshotPreservedBytes: s.preserving?.preservedBytes ?? 0,
          snapshots: s.snapshots,
          costs: s.costs,
          allocatedBytes: s.volume.allocatedBytes,
          monthlyCost:
            s.config.store === 's3' && this.config.s3
              ? monthlyCost(this.config.s3.prices, s.volume.allocatedBytes, s.costs, (Date.now() - s.costs.since) / 1000)
              : undefined,
        })),
      journal: () => {
        const j = this.journal;
        if (!j) return undefined;
        const b = j.backlog();
        return {
          usedBytes: j.usedBytes,
          capacityBytes: j.capacityBytes,
          backlogBytes: b.bytes,
          oldestRecordMs: b.oldestMs,
          stats: this.journalStats,
        };
      },
      cluster: () =>
        [...this.clusterLuns.values()].map((c) => ({
          name: c.name,
          state: c.role === 'active' ? 'active-optimized' : c.role === 'standby' ? 'standby' : 'transitioning',
          ...c.stats,
        })),
      replication: () => {
        const x = this.replication;
        if (!x) return undefined;
        const localOnlyLuns = [...this.luns.values()].filter((l) => l.lease?.localOnly === true).length;
        return { stats: x.stats, peers: x.links(), localOnlyLuns };
      },
      backends: () => this.backends.all().map((b) => ({ kind: b.kind, stats: b.stats, pool: b.pool.stats() })),
    });
    http.route('GET', '/metrics', async () => ({ status: 200, type: registry.contentType, body: await registry.metrics() }));
    http.route('GET', '/healthz', async () =>
      this.started ? { status: 200, type: 'text/plain', body: 'ok\n' } : { status: 503, type: 'text/plain', body: 'starting\n' },
    );
    adminRoutes(http, this);
    clusterRoutes(http, this);
    await http.start();
    this.http = http;
  }

  /**
   * Grows a served LUN online (s3tgt lun resize, or a larger size on reload): the volume
   * grows in the store, then every initiator gets CAPACITY DATA HAS CHANGED (SBC-4 §4.10)
   * and re-reads the capacity.
   */
  async grow(name: string, sizeBytes: number): Promise<void> {
    const s = this.luns.get(name);
    if (!s) throw new Error(`no LUN named "${name}" is served`);
    if (s.config.snapshotOf) throw new Error(`LUN "${name}" is a snapshot: it keeps its size`);
    await s.volume.grow(sizeBytes);
    s.lu.ua.establish('CapacityDataChanged');
  }

  /**
   * SIGHUP: applies what can change without dropping a session (new targets and LUNs, CHAP,
   * ACLs, discovery CHAP, larger LUN sizes) and logs what needs a restart. A configuration
   * that does not load leaves everything as it was.
   */
  async reload(next: Config): Promise<ReloadPlan> {
    const plan = planReload(this.config, next, (name) => this.luns.get(name)?.volume.info.sizeBytes);
    configureLogging(next.log.level, next.log.format);
    for (const why of plan.needsRestart) log.warn('reload: needs a restart, left as it was', { change: why });
    if (plan.newLuns.length > 0 || plan.grown.length > 0 || plan.changedTargets.length > 0) await this.backends.open(next);
    await this.openLuns(plan.newLuns);
    for (const g of plan.grown) await this.grow(g.name, g.sizeBytes);
    for (const t of plan.changedTargets) this.addTarget(t);
    this.server.discoveryAuth = authPolicy(next.discovery.chap);
    this.config = next;
    log.info('configuration reloaded', { changes: describeReload(plan) });
    return plan;
  }

  /** Start failed: nothing was written yet, so the LUNs close and their leases go. */
  private async closeLuns(): Promise<void> {
    for (const c of this.clusterLuns.values()) await c.stop();
    for (const s of this.luns.values()) {
      await s.volume.close().catch(() => undefined);
      await s.lease?.release();
    }
  }

  /**
   * Graceful stop: no new logins, ask initiators to log out, finish commands, flush, close.
   * Every step is bounded: a stalled S3 makes the flush fail (exit 1, the lease left to
   * expire), never hang.
   */
  stop(graceMs = 10_000): Promise<void> {
    const s3 = this.config.s3;
    // A flush of the whole cache is made of uploads each bounded by retryDeadline + requestTimeout.
    const flushBoundMs = Math.max(30_000, 2 * ((s3?.retryDeadlineMs ?? 15_000) + (s3?.requestTimeoutMs ?? 10_000)));
    this.stopping ??= (async () => {
      await bounded('closing the HTTP endpoint', graceMs, this.http?.close());
      await this.server.drain(Math.ceil(graceMs / 1000));
      const quiet = await this.server.quiesce(graceMs);
      if (!quiet) log.warn('commands still running at shutdown; aborting them');
      this.server.closeAll('shutdown');
      // Cluster LUNs stop watching their leases (no takeover during shutdown); the active
      // ones are closed below like any other, their leases released for the other node.
      for (const c of this.clusterLuns.values()) await bounded(`stopping the watch of LUN ${c.name}`, graceMs, c.stop()).catch(() => undefined);
      let failed: unknown;
      for (const [name, s] of this.luns) {
        try {
          // Writes are suspended while the lease is unrenewed (an S3 outage that just ended):
          // renew it first so the dirty chunks can still be written back.
          if (s.lease?.state === 'suspended') await s.lease.regain(graceMs);
          await bounded(`flushing LUN ${name}`, flushBoundMs, s.volume.close());
          log.info('LUN flushed and closed', { name });
          // A cluster node hands its LUNs to another node, which takes them at once.
          const heir = this.config.cluster?.nodes.find((n) => n.name !== this.config.cluster?.self.name)?.name;
          await bounded(`releasing the lease of LUN ${name}`, graceMs, s.lease?.release(this.clusterLuns.has(name) ? heir : undefined));
        } catch (e) {
          log.error('LUN could not be flushed at shutdown; its lease is kept until it expires', { name, error: (e as Error).message });
          failed ??= e;
        }
      }
      await bounded('closing the stores', graceMs, this.backends.close()).catch(() => undefined);
      await bounded('closing journal replication', graceMs, this.replication?.close()).catch(() => undefined);
      // What could not be uploaded stays in the journal for the next start to replay.
      await bounded('closing the journal', graceMs, this.journal?.close()).catch((e: unknown) =>
        log.error('the journal did not close cleanly', { error: (e as Error).message }),
      );
      if (failed) throw failed;
    })();
    return this.stopping;
  }
}
