import type { ClusterConfig } from '../config/cluster';
import type { LunConfig } from '../config/config';
import type { LogicalUnit } from '../scsi/logical-unit';
import type { Journal } from '../storage/journal/journal';
import { uuidHex } from '../storage/journal/record';
import { ReplicaBacklog } from '../storage/journal/replication/replica-backlog';
import type { ReplicaStore } from '../storage/journal/replication/replica-store';
import type { ReplicationStats } from '../storage/journal/replication/stats';
import type { LunLayout } from '../storage/layout';
import { Lease, LeaseError, type LeaseTiming, type SeenLease } from '../storage/lease';
import { type LeaseRecord, parseLeaseRecord } from '../storage/lease-record';
import type { ObjectStore, RequestOptions } from '../storage/object-store';
import type { VolumeInfo } from '../storage/volume';
import { readVolumeInfo } from '../storage/volume-meta';
import { type Clock, every, type Timer } from '../util/clock';
import { invariant } from '../util/invariant';
import { log } from '../util/log';
import { bounded } from './bounded';
import { settleTakenLun } from './journal-recovery';
import { type OpenLun, openLun, type ReplicaReplay } from './open-volume';
import { StandbyVolume } from './standby-volume';

/**
 * A LUN's role on this node (docs/ha.md), changed only by ClusterLun:
 * - standby: another node holds (or nobody holds) the lease; this node watches it;
 * - activating: this node is taking the lease and opening the volume (media access: 04/0A);
 * - active: this node holds the lease and serves the medium;
 * - deactivating: handing over or fenced: running commands finish, the cache is flushed, the
 *   lease released (media access: 04/0A).
 */
export type ClusterRole = 'standby' | 'activating' | 'active' | 'deactivating';

/** A standby re-reads volume.json every this many looks (a LUN grown on the active node). */
const SIZE_CHECK_EVERY = 10;

/** What a ClusterLun counts about itself (metrics). */
export class ClusterLunStats {
  /** Leases taken from a node that stopped renewing (or an absent lease, at start or later). */
  takeovers = 0;
  /** Leases taken because the holder handed the LUN to this node (`lun move`). */
  handoversIn = 0;
  handoversOut = 0;
  /** Leases lost to another node while active (fenced). */
  fenced = 0;
  /** Seconds the last transition to active took on this node (lease to serving). */
  lastActivationSeconds = 0;
  /** Seconds the last hand-over away from this node took (barrier to released). */
  lastDeactivationSeconds = 0;
}

export interface ClusterLunDeps {
  readonly cluster: ClusterConfig;
  readonly lun: LunConfig;
  readonly store: ObjectStore;
  readonly layout: LunLayout;
  readonly timing: LeaseTiming;
  readonly journal: Journal | undefined;
  readonly clock: Clock;
  /** Makes the LU (once) on the volume it starts with: the LUN's, or a standby stand-in. */
  makeLu(info: VolumeInfo, volume: OpenLun['volume'] | StandbyVolume): LogicalUnit;
  /** The node now serves the LUN (the service lists it, with its lease, for metrics and admin). */
  onActive(open: OpenLun): void;
  /** The node no longer serves it. */
  onInactive(): void;
  /** Bounds of the steps of a hand-over. */
  readonly graceMs: number;
  readonly flushBoundMs: number;
  /** What this node holds of the other nodes' journals (journal LUNs: docs/ha.md). */
  readonly replicas?: ReplicaSet;
}

/** The receiving side of journal replication, as a takeover needs it. */
export interface ReplicaSet {
  store(node: string): ReplicaStore | undefined;
  stores(): Iterable<ReplicaStore>;
  readonly stats: ReplicationStats;
}

/**
 * One LUN of a cluster on this node: presents it on every node, active where the lease is
 * held (docs/ha.md). A standby watches the lease object on its own monotonic clock and claims
 * it when it is absent (at once on the preferred node, after TTL + margin elsewhere), handed
 * over to this node, or unchanged for TTL + margin (its holder stopped renewing). Every
 * change of who is active raises ASYMMETRIC ACCESS STATE CHANGED.
 */
export class ClusterLun {
  private roleValue: ClusterRole = 'standby';
  private luValue: LogicalUnit | undefined;
  private uuidValue: string | undefined;
  private open: OpenLun | undefined;
  /** The lease as last seen (undefined: not looked at since the last change of role). */
  private seen: (SeenLease & { readonly since: number }) | undefined;
  private absentSince: number | undefined;
  private timer: Timer | undefined;
  private ticking: Promise<void> | undefined;
  private transition: Promise<void> | undefined;
  private stopped = false;
  private looks = 0;
  readonly stats = new ClusterLunStats();

  constructor(private readonly d: ClusterLunDeps) {}

  get role(): ClusterRole {
    return this.roleValue;
  }

  get name(): string {
    return this.d.lun.name;
  }

  get lu(): LogicalUnit | undefined {
    return this.luValue;
  }

  /**
   * The LUN's UUID (32 hex digits) as this node knows it: from its LU, or read by a takeover
   * before it looks at the replica (journal replication refuses its records from then on).
   */
  get uuid(): string | undefined {
    return this.uuidValue ?? (this.luValue ? uuidHex(this.luValue.identity.uuid) : undefined);
  }

  /**
   * Journal replication refuses other nodes' records of the LUN here (docs/ha.md): from the
   * moment this node starts taking it, and while it holds it with its lease known valid. A
   * node whose gate is not open (it cannot renew: it may have been deposed) takes them, as
   * it acknowledges none of its own then (ChunkVolume.checkWritable).
   */
  get refusesReplicas(): boolean {
    if (this.roleValue === 'activating') return true;
    if (this.roleValue === 'standby') return false;
    return this.open?.lease.gate.state === 'open';
  }

  /** The node that holds the LUN, as this node knows it. */
  get activeNode(): string | undefined {
    return this.luValue?.alua?.active;
  }

  /**
   * First look: the LUN is active here or presented as standby when this resolves. A LUN
   * nobody has created yet waits for its first active node (which may be this one, once the
   * absent lease has waited out the preferred node).
   */
  async start(): Promise<void> {
    for (;;) {
      await this.tick();
      if (this.luValue) break;
      if (this.roleValue === 'standby') {
        const info = await readVolumeInfo(this.d.store, this.d.layout);
        if (info) {
          this.luValue = this.d.makeLu(info, this.standbyVolume(info));
          this.publish(this.seen?.record?.handoverTo ? undefined : this.seen?.record?.node);
          break;
        }
      }
      if (this.stopped) throw new Error(`LUN ${this.name}: stopped before it started`);
      await this.d.clock.sleep(this.d.timing.renewEveryMs);
    }
    this.timer = every(this.d.clock, this.d.timing.renewEveryMs, () => void this.tick());
  }

  /** One look at the lease (never two at once); a transition runs to its end inside it. */
  tick(): Promise<void> {
    if (this.ticking || this.stopped) return this.ticking ?? Promise.resolve();
    const t = this.look()
      .catch((e: unknown) => {
        log.warn('cluster: watching the LUN lease failed; will retry', { lun: this.name, error: (e as Error).message });
      })
      .finally(() => {
        this.ticking = undefined;
      });
    this.ticking = t;
    return t;
  }

  private async look(): Promise<void> {
    if (this.roleValue === 'active') {
      // Another node took the lease (this one was cut off from S3, or paused): step down.
      if (this.open?.lease.state === 'lost') {
        this.stats.fenced++;
        await this.deactivate('the lease was taken over by another node');
        return;
      }
      // While no renewal has landed for TTL/2 (the gate suspended) this node may have been
      // deposed already: it presents the LUN as standby (media access 02/04/0B sends the
      // initiators' multipath to the other paths; RTPG names no active group) until a renewal
      // lands again, instead of claiming an active path it may no longer have.
      this.publish(this.open?.lease.gate.state === 'open' ? this.d.cluster.self.name : undefined);
      return;
    }
    if (this.roleValue !== 'standby') return;
    const { store, layout, timing, clock, cluster, lun } = this.d;
    const now = clock.now();
    if (++this.looks % SIZE_CHECK_EVERY === 0) await this.followSize();
    const head = await store.head(layout.leaseKey, this.bounds());
    if (!head) {
      this.seen = undefined;
      this.absentSince ??= now;
      this.publish(undefined);
      const preferredHere = lun.preferred === undefined || lun.preferred === cluster.self.name;
      if (preferredHere || now - this.absentSince >= timing.ttlMs + timing.marginMs) await this.activate(null);
      return;
    }
    this.absentSince = undefined;
    if (!this.seen || this.seen.etag !== head.etag) {
      const got = await store.get(layout.leaseKey, undefined, this.bounds());
      if (!got) return;
      let record: SeenLease['record'];
      try {
        record = parseLeaseRecord(got.body, layout.leaseKey);
      } catch {
        record = undefined; // held by someone unknown: watched like any other holder
      }
      this.seen = { etag: got.meta.etag, record, since: now };
      // A lease handed over is nobody's until its new node takes it.
      this.publish(record?.handoverTo ? undefined : record?.node);
      if (record?.handoverTo === cluster.self.name) await this.activate(this.seen);
      else await this.settleJournal(record);
      return;
    }
    await this.settleJournal(this.seen.record);
    // Unchanged since this node first saw it for TTL + margin, on this node's clock: its
    // holder's gate closed at TTL/2 after its last renewal was sent, before we saw it.
    if (now - this.seen.since >= timing.ttlMs + timing.marginMs) await this.activate(this.seen);
  }

  /** What this node's journal left of the LUN, once another node holds it (journal-recovery.ts). */
  private async settleJournal(holder: LeaseRecord | undefined): Promise<void> {
    const { journal, cluster } = this.d;
    const uuid = this.uuid;
    if (!journal || !holder || uuid === undefined || journal.recoveredFor(uuid).length === 0) return;
    await settleTakenLun(journal, uuid, this.name, holder, cluster.self.name);
  }

  /**
   * A LUN grown on the active node: a standby reports the new size too, with CAPACITY DATA
   * HAS CHANGED (SBC-4 §4.10), within SIZE_CHECK_EVERY looks.
   */
  private async followSize(): Promise<void> {
    const lu = this.luValue;
    if (!lu) return;
    const info = await readVolumeInfo(this.d.store, this.d.layout);
    if (!info || info.sizeBytes === lu.volume.info.sizeBytes || this.roleValue !== 'standby') return;
    lu.attach(this.standbyVolume(info));
    lu.ua.establish('CapacityDataChanged');
  }

  private bounds(): RequestOptions {
    const t = this.d.timing;
    return { lane: 'control', attemptTimeoutMs: Math.max(250, Math.round(t.ttlMs / 4)), retryDeadlineMs: Math.round(t.ttlMs / 3) };
  }

  private activate(seen: SeenLease | null): Promise<void> {
    invariant(this.roleValue === 'standby', () => `LUN ${this.name}: activate from ${this.roleValue}`);
    const t = this.activateOnce(seen).finally(() => {
      this.transition = undefined;
    });
    this.transition = t;
    return t;
  }

  private async activateOnce(seen: SeenLease | null): Promise<void> {
    const { store, layout, lun, timing, journal, cluster, clock } = this.d;
    const self = cluster.self.name;
    this.roleValue = 'activating';
    this.publish(self, true);
    const t0 = clock.now();
    let open: OpenLun | undefined;
    try {
      const plan = await this.replicaPlan(seen?.record);
      open = await openLun(
        store,
        layout,
        lun,
        timing,
        journal,
        (vouch) =>
          Lease.claim(
            store,
            layout.leaseKey,
            seen,
            self,
            timing,
            (p) => [...new Set([...vouch(p), ...(plan?.holders ?? [])])],
            undefined,
            plan?.covers,
          ),
        { node: self, ...(plan ? { replica: plan.replay } : {}) },
      );
      if (this.luValue) this.luValue.attach(open.volume);
      else this.luValue = this.d.makeLu(open.volume.info, open.volume);
      // Mode pages and persistent reservations as the last active node left them.
      await this.luValue.load();
    } catch (e) {
      if (open) {
        await open.volume.close().catch(() => undefined);
        await open.lease.release();
        if (this.luValue) this.luValue.attach(this.standbyVolume(open.volume.info));
      }
      this.roleValue = 'standby';
      this.seen = undefined;
      this.publish(seen?.record?.node);
      if (e instanceof LeaseError) log.info('cluster: the LUN lease was not taken', { lun: this.name, reason: e.message });
      else log.warn('cluster: taking the LUN failed; staying standby', { lun: this.name, error: (e as Error).message });
      return;
    }
    this.open = open;
    this.roleValue = 'active';
    this.publish(self);
    this.d.onActive(open);
    if (seen?.record?.handoverTo === self) this.stats.handoversIn++;
    else this.stats.takeovers++;
    this.stats.lastActivationSeconds = (clock.now() - t0) / 1000;
    log.warn('cluster: this node is now active for the LUN', {
      lun: this.name,
      previous: seen?.record?.node ?? 'nobody',
      seconds: this.stats.lastActivationSeconds,
      replayed: open.replay?.records ?? 0,
    });
  }

  /**
   * What a takeover of a journal LUN applies of its predecessor's journal (docs/ha.md,
   * "Journal replication"). From another node: its holder's records (and those it vouched
   * for) in this node's replica of that node, if the replica is complete and the lease does
   * not say local-only; they are then covered (their node drops its own copies). From this
   * node's own earlier lease: the replica holders it vouched for, not consumed yet (a start
   * that stopped before the replay was done).
   */
  private async replicaPlan(
    prev: LeaseRecord | undefined,
  ): Promise<{ readonly holders: readonly string[]; readonly covers: readonly string[]; readonly replay: ReplicaReplay } | undefined> {
    const replicas = this.d.replicas;
    const self = this.d.cluster.self.name;
    // A node that handed the LUN over flushed it first (its last records are a checkpoint).
    if (!replicas || !this.d.lun.journal || !prev || prev.handoverTo === self) return undefined;
    let stores: ReplicaStore[];
    let streams: number[] | undefined;
    let holders: string[];
    let covers: string[] = [];
    // The role is 'activating': once the UUID is known here, the replica server refuses the
    // LUN's records, so none is acknowledged after the read below.
    if (this.uuid === undefined) {
      const info = await readVolumeInfo(this.d.store, this.d.layout);
      this.uuidValue = info ? uuidHex(info.uuid) : undefined;
    }
    if (this.uuid === undefined) return undefined;
    if (prev.node !== undefined && prev.node !== self) {
      const st = replicas.store(prev.node);
      if (!st) return undefined;
      streams = await st.replayStreams();
      if (streams === undefined || prev.replication === 'local-only') {
        replicas.stats.unprotectedTakeovers++;
        log.error(
          "cluster: taking the LUN over without its predecessor's journal: the replica here is incomplete; writes that node acknowledged local-only are missing (they stay in its journal, quarantined when it returns)",
          { lun: this.name, previous: prev.node, leaseSaysLocalOnly: prev.replication === 'local-only', replicaComplete: streams !== undefined },
        );
        return undefined;
      }
      stores = [st];
      holders = [prev.holder, ...(prev.vouches ?? [])].map(uuidHex);
      covers = holders;
    } else {
      stores = [...replicas.stores()];
      for (const st of stores) await st.idle();
      holders = (prev.vouches ?? []).map(uuidHex);
      if (holders.length === 0) return undefined;
    }
    const wanted = new Set(holders);
    return {
      holders,
      covers,
      replay: {
        records: async (uuid) => {
          const parts: ReplicaBacklog[] = [];
          try {
            for (const st of stores) parts.push(await st.backlog(uuid, wanted, streams));
          } catch (e) {
            await ReplicaBacklog.merge(parts).close();
            throw e;
          }
          const backlog = ReplicaBacklog.merge(parts);
          replicas.stats.replayedRecords += backlog.count;
          return backlog;
        },
        consumed: async (uuid) => {
          for (const st of stores) await st.consume(uuid, holders);
        },
      },
    };
  }

  /**
   * Steps down: new media access gets 04/0A, running commands finish, the cache is flushed
   * and the lease released, to `handoverTo` (lun move) or for anyone. A fenced node's flush
   * fails at its gate (its successor owns the chunks now): what it had not written back is
   * lost, as it would be in a crash, which is why cluster LUNs are write-through or journal.
   */
  private async deactivate(why: string, handoverTo?: string): Promise<void> {
    invariant(this.roleValue === 'active' && this.open !== undefined, () => `LUN ${this.name}: deactivate from ${this.roleValue}`);
    const open = this.open;
    const lu = this.luValue;
    invariant(lu !== undefined, () => `LUN ${this.name}: active without a logical unit`);
    const { clock, graceMs, flushBoundMs } = this.d;
    const t0 = clock.now();
    this.roleValue = 'deactivating';
    this.publish(this.d.cluster.self.name, true);
    log.warn('cluster: stepping down for the LUN', { lun: this.name, why, handoverTo });
    const running = lu.tasks.tasks();
    await bounded(`commands of LUN ${this.name} to finish`, graceMs, Promise.all(running.map((t) => t.finished))).catch((e: unknown) =>
      log.warn('cluster: commands still running at the hand-over', { lun: this.name, error: (e as Error).message }),
    );
    this.d.onInactive();
    try {
      await bounded(`flushing LUN ${this.name}`, flushBoundMs, open.volume.close());
    } catch (e) {
      log.error('cluster: the LUN could not be flushed when stepping down', { lun: this.name, error: (e as Error).message });
      handoverTo = undefined; // the next node must not take it before this one's lease expired
    }
    await bounded(`releasing the lease of LUN ${this.name}`, graceMs, open.lease.release(handoverTo)).catch(() => undefined);
    // A journal LUN that could not upload everything (fenced, or S3 unreachable): what is
    // left becomes recovered records, settled at the next look at the lease (journal.ts).
    const journal = this.d.journal;
    if (journal && !journal.isClean(open.volume.info.uuid)) {
      await journal.abandon(open.volume.info.uuid).then(
        (n) => log.warn('cluster: journal records of the LUN not in S3 are kept for the next look at its lease', { lun: this.name, records: n }),
        (e: unknown) =>
          log.error('cluster: the journal records of the LUN could not be read back; they stay until a restart', {
            lun: this.name,
            error: String(e),
          }),
      );
    }
    lu.attach(this.standbyVolume(open.volume.info));
    this.open = undefined;
    this.seen = undefined;
    this.roleValue = 'standby';
    this.publish(handoverTo);
    if (handoverTo) this.stats.handoversOut++;
    this.stats.lastDeactivationSeconds = (clock.now() - t0) / 1000;
  }

  /**
   * `s3tgt lun move LUN NODE`: hands the LUN to `node` at a barrier. The lease's last write
   * names it, and it claims the lease at its next look (one renewal interval).
   */
  async moveTo(node: string): Promise<void> {
    if (!this.d.cluster.nodes.some((n) => n.name === node)) throw new Error(`"${node}" is not a node of the cluster`);
    await this.ticking;
    if (node === this.d.cluster.self.name) {
      if (this.roleValue !== 'active') throw new Error(`LUN ${this.name} is not active on this node: ask the node that has it`);
      return;
    }
    if (this.roleValue !== 'active') throw new Error(`LUN ${this.name} is not active on this node (it is ${this.roleValue})`);
    await this.deactivate(`moved to node ${node}`, node);
  }

  /** Shutdown: stop watching; an active LUN is closed by the service's stop like any other. */
  async stop(): Promise<OpenLun | undefined> {
    this.stopped = true;
    this.timer?.cancel();
    await this.ticking;
    await this.transition;
    return this.open;
  }

  private standbyVolume(info: VolumeInfo): StandbyVolume {
    return new StandbyVolume(this.d.store, this.d.layout, info, this.d.lun.cacheMode, this.d.lun.readOnly);
  }

  /** Tells the LU who is active now; a change raises the unit attention on every nexus. */
  private publish(active: string | undefined, transitioning = false): void {
    const lu = this.luValue;
    if (lu?.alua?.set(active, transitioning)) lu.ua.establish('AsymmetricAccessStateChanged');
  }
}
